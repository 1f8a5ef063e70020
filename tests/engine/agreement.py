"""The check that the vectorized engine says what the reference says, account by account."""

from decimal import Decimal

from margin.engine.reference import quote_account
from margin.engine.types import AccountInput
from margin.engine.vector import book_from_accounts, revalue
from tests.engine.support import close

# Float errors grow with the largest amount in an account (ε ≈ 1e-16 of it); a figure near 0 is
# compared to 1e-9 of this much of that amount, 1000 times the float error.
FLOOR_FRACTION = 1e-4


def account_size(account: AccountInput) -> float:
    """The largest amounts an account's figures are computed from, summed."""
    size = 1.0 + sum(abs(float(line.quantity * line.price)) for line in account.collateral)
    for position in account.positions:
        size += float(position.quantity * (position.mark_price + position.entry_price))
        size += float(position.isolated_margin or 0)
    return size


def _near_a_floor(notional: Decimal, floors: list[Decimal]) -> bool:
    return any(abs(notional - floor) <= Decimal("1e-12") * notional for floor in floors)


def assert_vector_matches_reference(accounts: list[AccountInput]) -> None:
    book, marks, prices = book_from_accounts(accounts)
    result = revalue(book, marks, prices)
    row = 0
    for a, account in enumerate(accounts):
        quote = quote_account(account)
        floor = FLOOR_FRACTION * account_size(account)
        pairs = {
            "collateral_value": (result.collateral_value[a], quote.collateral_value),
            "unrealized_pnl": (result.account_unrealized_pnl[a], quote.unrealized_pnl),
            "margin_balance": (result.margin_balance[a], quote.margin_balance),
            "maintenance_margin": (result.account_maintenance_margin[a], quote.maintenance_margin),
            "initial_margin": (result.account_initial_margin[a], quote.initial_margin),
            "withdrawable": (result.withdrawable[a], quote.withdrawable),
        }
        # A ratio over a balance that cancels to about 0 is as unstable as the balance is small;
        # the balance itself is compared above.
        if abs(quote.margin_balance) > Decimal(1e-6 * floor):
            pairs["margin_ratio"] = (result.margin_ratio[a], quote.margin_ratio)
        for name, (vector_value, reference_value) in pairs.items():
            assert close(vector_value, reference_value, scale=floor), (
                a,
                name,
                vector_value,
                reference_value,
            )

        for position, expected in zip(account.positions, quote.positions, strict=True):
            where = (a, position.id)
            if result.bracket[row] != expected.bracket:
                # The bracket is picked by the owner's notional (the position's own if alone).
                assert _near_a_floor(
                    expected.owner_notional, [b.floor for b in position.brackets.brackets]
                ), where
            else:
                for name in ("mmr", "cum", "max_leverage"):
                    assert close(getattr(result, name)[row], getattr(expected, name)), (where, name)
            for name in (
                "notional",
                "maintenance_margin",
                "initial_margin",
                "unrealized_pnl",
                "liquidity_addon",
            ):
                assert close(getattr(result, name)[row], getattr(expected, name), scale=floor), (
                    where,
                    name,
                )
            price_floor = float(position.mark_price) + floor / float(position.quantity)
            for name in ("liquidation_price", "bankruptcy_price"):
                vector_value, reference_value = getattr(result, name)[row], getattr(expected, name)
                assert close(vector_value, reference_value, scale=price_floor), (
                    where,
                    name,
                    vector_value,
                    reference_value,
                )
            if position.is_isolated and abs(
                position.isolated_margin + expected.unrealized_pnl
            ) > Decimal(1e-6 * floor):
                assert close(result.isolated_margin_ratio[row], expected.isolated_margin_ratio), (
                    where
                )
            row += 1
    assert row == book.n_positions
