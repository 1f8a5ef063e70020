"""Issue 14's defects, each as a scenario through run_scenario with its numbers. Sources:
Binance USD-M "Liquidation" (the clearance fee goes to the insurance fund; when the margin
left cannot pay it the position is taken over at the bankruptcy price, and the insurance fund
keeps the rest), Bybit "Liquidation process" (isolated: the remaining position margin goes
to the insurance fund; partial liquidation by risk limit tier), Binance "Auto-Deleveraging"
(ranking by PnL% × effective leverage; isolated positions on their own margin), OKX
"Liquidation mechanism" (offsetting positions of one underlying are closed together)."""

from decimal import ROUND_DOWN, Decimal

import pytest

from margin.engine.demo import BINANCE_BTCUSDT_ROWS
from margin.engine.types import BracketTable
from tests.scenarios.support import (
    account,
    assert_books_sound,
    d,
    events,
    position,
    run_scenario,
    scenario,
)

pytestmark = pytest.mark.django_db


def test_a_50x_btc_long_just_past_its_line_pays_the_fee_and_keeps_nothing():
    # given: 1 BTC at 50x, 1,950 USDT (47.5 of it pays the opening taker fee); the
    # liquidation price is (95,000 − 1,902.5 − 50) / 0.995 = 93,515.08; the mark goes 50 under
    doc = scenario(
        [account("alice", {"USDT": "1950"}, position("BTCUSDT", "long", "1", "95000", "50"))],
        [(10, {"BTC": "93465"})],
    )
    # when
    result = run_scenario(doc)
    # then: taken over (no partial step can free 0.5% of MM at 0.7% of cost); the fee, capped
    # by the 180.57 left after slippage, and nothing else: the trader keeps nothing
    (liquidation,) = events(result, "liquidation", "alice")
    assert liquidation["partial"] is False and liquidation["quantity"] == "1"
    assert liquidation["price"] == "93278.07"  # 93,465 × (1 − 0.2%)
    assert d(liquidation["fee"]) == Decimal("180.57")  # 1,902.5 − 1,535 − 186.93
    assert result["insurance_fund"]["USDT"] == "180.57"
    assert result["accounts"]["alice"]["wallet"] == {"USDT": "0"}
    assert result["accounts"]["alice"]["positions"] == []
    assert_books_sound(result)


def _just_past_the_line(quantity: Decimal, wallet: Decimal) -> Decimal:
    """The first whole price under 95,000 at which a BTCUSDT long of `quantity` holding
    `wallet` has its margin ratio ≥ 1.001 (Binance's brackets, cum by its recurrence)."""
    table = BracketTable.build(
        [
            {"floor": Decimal(f), "mmr": Decimal(m), "max_leverage": Decimal(x)}
            for f, m, x in BINANCE_BTCUSDT_ROWS
        ]
    )
    price = Decimal(95000)
    while True:
        price -= 1
        notional = quantity * price
        _, bracket = table.bracket_for(notional)
        mm = notional * bracket.mmr - bracket.cum
        if mm >= Decimal("1.001") * (wallet + quantity * (price - 95000)):
            return price


@pytest.mark.parametrize(
    ("notional", "partial"),
    [(20_000, False), (100_000, False), (1_000_000, False), (5_000_000, True)],
)
def test_btcusdt_longs_of_every_size_pay_the_fee_and_partial_steps_happen_where_they_help(
    notional, partial
):
    # given: a BTCUSDT long of the notional at 20x, funded with its initial margin, and the
    # mark just past its liquidation line
    quantity = (Decimal(notional) / 95000).quantize(Decimal("1e-6"))
    deposit = (quantity * 95000 / 20).quantize(Decimal("0.01"))
    wallet = deposit - quantity * 95000 * Decimal("0.0005")
    price = _just_past_the_line(quantity, wallet)
    doc = scenario(
        [account("alice", {"USDT": deposit}, position("BTCUSDT", "long", quantity, "95000", "20"))],
        [(10, {"BTC": str(price)})],
        fund="1000000",
    )
    # when
    result = run_scenario(doc)
    # then: every liquidation pays a fee; a partial step wherever a unit sold frees more
    # margin than it costs (cost: 0.2% slippage + 0.5% fee; BTCUSDT's 1% bracket from 3M on)
    liquidations = events(result, "liquidation", "alice")
    assert liquidations and all(d(e["fee"]) > 0 for e in liquidations)
    assert any(e["partial"] for e in liquidations) is partial
    if partial:
        assert result["accounts"]["alice"]["positions"], "a partial step leaves a position"
        assert d(result["accounts"]["alice"]["margin_ratio"]) < 1
    else:
        assert result["accounts"]["alice"]["wallet"] == {"USDT": "0"}
    assert_books_sound(result)


def test_a_position_in_a_high_risk_tier_is_first_cut_to_the_top_of_the_lower_tier():
    # Bybit "Liquidation Process (USDT Contract)" (help.bybit.com article 900000167723): from
    # the second margin tier up, a FillOrKill order for the difference between the position
    # value and the lower tier's value that meets the margin requirement comes first; the
    # position is taken over only if that cannot restore it.
    # given: a 5M USD BTCUSDT long at 20x (bracket 4: 1% from 3M), the mark just past its line
    quantity = Decimal("52.631579")
    deposit = Decimal("250000.00")
    price = _just_past_the_line(quantity, deposit - quantity * 95000 * Decimal("0.0005"))
    assert price == 90989
    doc = scenario(
        [account("alice", {"USDT": deposit}, position("BTCUSDT", "long", quantity, "95000", "20"))],
        [(10, {"BTC": str(price)})],
    )
    # when
    result = run_scenario(doc)
    # then: one partial step sells down to just under 3M at the mark (bracket 3's top), not
    # the 32.29442695 BTC the smallest step to the 0.7 target sold before; its fee to the fund
    (liquidation,) = events(result, "liquidation", "alice")
    assert liquidation["partial"] is True and liquidation["quantity"] == "19.66056053"
    assert liquidation["price"] == "90807.022"  # 90,989 × (1 − 0.2%)
    fee = (d(liquidation["quantity"]) * d(liquidation["price"]) * Decimal("0.005")).quantize(
        Decimal("1e-8"), rounding=ROUND_DOWN
    )
    assert d(liquidation["fee"]) == fee == Decimal("8926.58476290")
    assert d(result["insurance_fund"]["USDT"]) == fee
    (left,) = result["accounts"]["alice"]["positions"]
    assert left["quantity"] == "32.97101847"
    assert 3_000_000 - 90989 * Decimal("1e-8") < d(left["quantity"]) * price < 3_000_000
    assert d(result["accounts"]["alice"]["margin_ratio"]) == Decimal("0.77646373")
    assert_books_sound(result)


def test_an_isolated_position_past_bankruptcy_is_deleveraged_when_the_fund_cannot_pay():
    # given: an empty fund; alice 1 BTC isolated long at 20x with 4,750 of margin; bob short
    # 1 BTC (cross, well funded); BTC gaps to 85,000 (a deficit of 5,250 + slippage)
    doc = scenario(
        [
            account(
                "alice",
                {"USDT": "10000"},
                position("BTCUSDT", "long", "1", "95000", "20", isolated_margin="4750"),
            ),
            account("bob", {"USDT": "50000"}, position("BTCUSDT", "short", "1", "95000", "5")),
        ],
        [(10, {"BTC": "85000"})],
    )
    # when
    result = run_scenario(doc)
    # then: the fund never pays what it does not have; bob takes the position at alice's
    # bankruptcy price; alice's cross wallet is untouched by her isolated loss
    assert not events(result, "insurance_cover")
    (adl,) = events(result, "adl", "alice")
    assert adl["counterparty"] == "bob" and adl["quantity"] == "1"
    assert d(adl["price"]) > 85000
    assert result["insurance_fund"]["USDT"] == "0"
    assert d(result["accounts"]["alice"]["wallet"]["USDT"]) == Decimal("10000") - Decimal(
        "4750"
    ) - Decimal("47.5")
    assert_books_sound(result)


def test_an_isolated_liquidation_pays_the_fee_and_its_remaining_margin_to_the_fund():
    # given: 1 BTC isolated long at 50x with 1,950 of margin (1,902.5 after the taker fee);
    # its own line is ~93,515
    doc = scenario(
        [
            account(
                "alice",
                {"USDT": "5000"},
                position("BTCUSDT", "long", "1", "95000", "50", isolated_margin="1950"),
            )
        ],
        [(10, {"BTC": "93465"})],
    )
    # when
    result = run_scenario(doc)
    # then: fee and remainder to the fund; alice's cross wallet gets nothing back
    (liquidation,) = events(result, "liquidation", "alice")
    assert liquidation["margin_mode"] == "isolated" and d(liquidation["fee"]) > 0
    fund = d(result["insurance_fund"]["USDT"])
    assert fund == d(liquidation["fee"]) + d(liquidation["remainder"])
    assert fund == Decimal("1902.5") - Decimal("1535") - Decimal("186.93")
    assert result["accounts"]["alice"]["wallet"]["USDT"] == "3050"
    assert_books_sound(result)


def test_a_loss_nobody_can_cover_is_written_off_never_left_as_a_negative_wallet():
    # given: an empty fund, no opposing position: 1 BTC long at 50x gaps 20%
    doc = scenario(
        [account("alice", {"USDT": "1950"}, position("BTCUSDT", "long", "1", "95000", "50"))],
        [(10, {"BTC": "76000"})],
    )
    # when
    result = run_scenario(doc)
    # then: closed at the market, the 17,252.5 owed written off in a journal of its own
    (liquidation,) = events(result, "liquidation", "alice")
    assert liquidation["quantity"] == "1"
    (write_off,) = events(result, "write_off", "alice")
    assert d(write_off["amount"]) == 19000 + Decimal("152") - Decimal("1902.5")
    assert result["accounts"]["alice"]["wallet"] == {"USDT": "0"}
    assert result["insurance_fund"]["USDT"] == "0"
    assert_books_sound(result)


def _stale_sol(collateral_sol: str, btc_crash: str):
    quotes = {v: "230" for v in ("venue-a", "venue-b", "venue-c")}
    silent = dict.fromkeys(quotes)
    return scenario(
        [
            account(
                "alice",
                {"USDT": "1950", "SOL": collateral_sol},
                position("BTCUSDT", "long", "1", "95000", "50"),
            )
        ],
        [
            (5, {"quotes": {"SOL": quotes}}),
            (10, {"quotes": {"SOL": silent}}),
            (70, {"index": {"BTC": btc_crash}}),
        ],
        fund="100000",
    )


def test_a_stale_dust_holding_does_not_shield_a_bankrupt_account():
    # given: 2.30 USD of SOL whose venues fall silent (stale 60 s later), then BTC at 87,000
    result = run_scenario(_stale_sol("0.01", "87000"))
    # then: liquidated on the fresh BTC mark; the dust is immaterial
    assert not events(result, "stale_blocked")
    (liquidation,) = events(result, "liquidation", "alice")
    assert liquidation["symbol"] == "BTCUSDT" and liquidation["quantity"] == "1"
    assert result["accounts"]["alice"]["positions"] == []
    assert_books_sound(result)


def test_a_material_stale_price_holds_the_liquidation_back_and_says_so():
    # given: 20 SOL (4,600 USD, far above 5% of the MM) stale, BTC falls past the line
    result = run_scenario(_stale_sol("20", "89000"))
    # then: nothing traded; a stale_blocked event names SOL and its age
    assert not events(result, "liquidation")
    blocked = events(result, "stale_blocked", "alice")
    assert blocked and blocked[0]["symbol"] == "SOL" and d(blocked[0]["age_s"]) >= 60
    assert result["accounts"]["alice"]["positions"]
    assert_books_sound(result)


def test_a_basis_book_is_liquidated_without_growing_its_net_exposure():
    # given: long 36 BTCUSDT perp, short 36 of the BTC future; gross MM 22,750 + 32,200 on
    # 57,030 − 3,420 of taker fees: ratio 1.025
    doc = scenario(
        [
            account(
                "alice",
                {"USDT": "57030"},
                position("BTCUSDT", "long", "36", "95000", "20"),
                position("BTC-FUTURE", "short", "36", "95000", "20"),
            )
        ],
        [(10, {"BTC": "95000"})],
        fund="1000000",
    )
    # when
    result = run_scenario(doc)
    # then: both legs reduced by the same quantity: no naked position is left
    liquidations = events(result, "liquidation", "alice")
    assert liquidations
    left = {p["side"]: d(p["quantity"]) for p in result["accounts"]["alice"]["positions"]}
    assert left.get("long", 0) == left.get("short", 0)
    by_side = {}
    for e in liquidations:
        by_side[e["symbol"]] = by_side.get(e["symbol"], 0) + d(e["quantity"])
    assert len(set(by_side.values())) == 1
    assert_books_sound(result)


def test_adl_ranks_an_isolated_position_on_its_own_margin():
    # given: an empty fund; alice bankrupt long; two shorts with the same size and entry: bob
    # cross in a 200k account, carol isolated with 2,000 of margin in an account holding 500k
    doc = scenario(
        [
            account("alice", {"USDT": "1950"}, position("BTCUSDT", "long", "1", "95000", "50")),
            account("bob", {"USDT": "200000"}, position("BTCUSDT", "short", "1", "95000", "50")),
            account(
                "carol",
                {"USDT": "500000"},
                position("BTCUSDT", "short", "1", "95000", "50", isolated_margin="2000"),
            ),
        ],
        [(10, {"BTC": "90000"})],
    )
    # when
    result = run_scenario(doc)
    # then: carol's position, at 90k on ~7k of its own margin, is far more leveraged: first
    (first, *_) = events(result, "adl", "alice")
    assert first["counterparty"] == "carol"
    assert_books_sound(result)


def test_adl_never_books_a_counterparty_a_loss_past_its_entry():
    # given: an empty fund; alice cross long 4 BTC at 50x and short 100 ETH at 50x on 20,000;
    # BTC gaps to 76,000 and ETH to 3,808 against both legs (a deficit of ~97k); bob short
    # 1 BTC from 95,000 on 500 USDT. Her BTC long's bankruptcy price carried her whole deficit
    # (100,481.40): bob was deleveraged there, a 5,481.40 realized loss and a wallet of
    # −5,019.40 with no event of his
    doc = scenario(
        [
            account(
                "alice",
                {"USDT": "20000"},
                position("BTCUSDT", "long", "4", "95000", "50"),
                position("ETHUSDT", "short", "100", "3400", "50"),
            ),
            account("bob", {"USDT": "500"}, position("BTCUSDT", "short", "1", "95000", "5")),
        ],
        [(10, {"BTC": "76000", "ETH": "3808"})],
    )
    # when
    result = run_scenario(doc)
    # then: bob gives up his profit and no more: deleveraged at his entry
    (adl,) = events(result, "adl", "alice")
    assert adl["counterparty"] == "bob" and adl["quantity"] == "1"
    assert adl["price"] == "95000"
    # his wallet is what his opening fill left (500 − 47.5 of taker fee): nothing realized
    assert result["accounts"]["bob"]["wallet"] == {"USDT": "452.5"}
    # the rest of alice's deficit is written off, audited, not left on anyone's wallet:
    # 19,640 after fees − 100 × 415.616 (ETH bought back at 3,815.616) − 3 × 19,152 (BTC sold
    # at 75,848) − 0 (the BTC bob took at 95,000)
    (write_off,) = events(result, "write_off", "alice")
    assert d(write_off["amount"]) == Decimal("79377.6")
    assert result["accounts"]["alice"]["wallet"] == {"USDT": "0"}
    assert result["insurance_fund"]["USDT"] == "0"
    assert_books_sound(result)
