"""`scenario_run`: build a scenario's book in the sandbox, run one revaluation tick per price
step through the same code as the beat job (prices, tick, states, liquidation, insurance fund,
ADL), and report what happened in the contract's format (tests/data/scenarios/README.md).

Events are read back from what the pipeline records, `AccountEvent` rows of each tick (and
the price guard's rejections): any step that records an account event (funding, settlement)
appears here without the runner knowing it.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

from django.contrib.auth import get_user_model
from django.utils import timezone

from margin.engine.fills import ledger_amount
from margin.errors import ApplicationError
from margin.models import (
    AccountEvent,
    AccountState,
    Asset,
    AssetPrice,
    CreditTier,
    Fill,
    FundingPayment,
    Instrument,
    LedgerAccount,
    LedgerAccountKind,
    Liquidation,
    MarginAccount,
    ParameterVersion,
    Position,
)
from margin.scenarios.loader import AccountSpec, Scenario, ScenarioError
from margin.scenarios.prices import ScenarioMarket
from margin.scenarios.sandbox import scenario_sandbox
from margin.selectors.figures import figures_now
from margin.selectors.ledger import ledger_differences
from margin.selectors.market import snapshots_as_of
from margin.selectors.parameters import parameters_in_force
from margin.services.collateral import collateral_deposit
from margin.services.ledger import margin_account_open
from margin.services.liquidation import insurance_fund_deposit, liquidation_run
from margin.services.margin_mode import position_leverage_set, position_margin_mode_switch
from margin.services.parameters import parameter_change_read
from margin.services.positions import position_fill
from margin.services.reference import reference_data_ensure
from margin.services.revaluation import revaluation_tick_run
from margin.services.writes import as_text

FUTURE_ALIAS = "BTC-FUTURE"
# An AccountEvent kind whose contract name differs.
CONTRACT_KIND = {AccountEvent.Kind.INSURANCE: "insurance_cover"}


@dataclass
class _Run:
    start: datetime
    names: dict[int, str] = field(default_factory=dict)  # account id → scenario name
    events: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    keys: count = field(default_factory=count)
    # The last funding payment and settlement fill reported: each step reports those after.
    last_payment: int = 0
    last_settlement: int = 0

    def key(self) -> str:
        return f"scenario-{next(self.keys)}"


def _refusal(error: ApplicationError, path: str) -> ScenarioError:
    fields = [name for name in (error.extra or {}) if name != "__all__"]
    return ScenarioError(f"{path}.{fields[0]}" if fields else path, error.message)


def parameters_override(overrides: dict[str, str]) -> ParameterVersion:
    """The version in force with the scenario's overrides, checked by the same validator as a
    desk's parameter change (names as `/disclosure/` publishes them)."""
    version = parameters_in_force()
    if not overrides:
        return version
    try:
        scalars = parameter_change_read({"fields": overrides}, version=version).scalars
    except ApplicationError as error:
        raise _refusal(error, "parameters") from error
    ParameterVersion.objects.filter(pk=version.pk).update(**scalars)
    return version


def _instrument(symbol: str, *, at: datetime, path: str) -> str:
    if symbol == FUTURE_ALIAS:
        future = (
            Instrument.objects.filter(
                kind=Instrument.Kind.FUTURE, underlying__symbol="BTC", expiry__gt=at
            )
            .order_by("expiry")
            .first()
        )
        if future is None:
            raise ScenarioError(path, "no listed BTC future is open at the scenario's start")
        return future.symbol
    if not Instrument.objects.filter(symbol=symbol, is_active=True).exists():
        raise ScenarioError(path, f"unknown symbol {symbol!r}")
    return symbol


def _account_build(spec: AccountSpec, n: int, run: _Run, version: ParameterVersion) -> None:
    """Deposits, then fills at the entry price through the ledger services. The opening fills
    are forced fills (no initial-margin check: a scenario may start under water) paying the
    taker fee; leverage and margin mode are set on the flat position first."""
    path = f"accounts[{n}]"
    tier = CreditTier.objects.filter(code=spec.credit_tier).first()
    if tier is None:
        raise ScenarioError(f"{path}.credit_tier", f"unknown credit tier {spec.credit_tier!r}")
    owner = get_user_model().objects.create(username=f"scenario-{n}")
    account = margin_account_open(owner=owner, name=spec.name[:64], credit_tier=tier.code)
    run.names[account.pk] = spec.name
    assets = set(Asset.objects.values_list("symbol", flat=True))
    for asset, amount in spec.collateral.items():
        if asset not in assets:
            raise ScenarioError(f"{path}.collateral.{asset}", "unknown asset")
        collateral_deposit(account=account, asset=asset, amount=amount, idempotency_key=run.key())
    for m, position in enumerate(spec.positions):
        where = f"{path}.positions[{m}]"
        symbol = _instrument(position.symbol, at=run.start, path=f"{where}.symbol")
        try:
            position_leverage_set(
                account=account,
                instrument=symbol,
                leverage=position.leverage,
                idempotency_key=run.key(),
            )
            if position.margin_mode == "isolated":
                position_margin_mode_switch(
                    account=account,
                    instrument=symbol,
                    mode="isolated",
                    isolated_margin=position.isolated_margin,
                    idempotency_key=run.key(),
                )
            position_fill(
                account=account,
                instrument=symbol,
                side="buy" if position.side == "long" else "sell",
                quantity=position.quantity,
                price=position.entry_price,
                fee=ledger_amount(
                    position.quantity * position.entry_price * version.taker_fee_rate
                ),
                reason="desk",
                reference=f"scenario-opening:{account.pk}:{symbol}",
            )
        except ApplicationError as error:
            raise _refusal(error, where) from error


def _fund_open(balances: dict[str, Decimal]) -> None:
    settlement = Asset.objects.get(is_settlement=True).symbol
    for asset, amount in balances.items():
        if asset != settlement:
            raise ScenarioError(
                f"insurance_fund.{asset}", f"the fund holds the settlement asset {settlement} only"
            )
        if amount > 0:
            insurance_fund_deposit(amount=amount, memo="scenario: opening insurance fund")


def _fund_balances() -> dict[str, str]:
    return {
        symbol: as_text(balance)
        for symbol, balance in LedgerAccount.objects.filter(
            kind=LedgerAccountKind.INSURANCE, margin_account__isnull=True
        )
        .order_by("asset__symbol")
        .values_list("asset__symbol", "balance")
        if balance or symbol == "USDT"
    }


def _event(run: _Run, at_s: str, event: AccountEvent) -> dict | None:
    kind = CONTRACT_KIND.get(event.kind, event.kind)
    if event.kind == AccountEvent.Kind.STATE_CHANGE:
        if event.to_state != AccountState.MARGIN_CALL or event.from_state in (
            AccountState.LIQUIDATION,
            AccountState.BANKRUPT,
        ):
            return {
                "at_s": at_s,
                "account": run.names[event.account_id],
                "kind": "state_change",
                "from": event.from_state,
                "to": event.to_state,
            }
        kind = "margin_call"
    detail = dict(event.detail)
    if "counterparty" in detail:
        detail["counterparty"] = run.names.get(int(detail["counterparty"]), detail["counterparty"])
    return {"at_s": at_s, "account": run.names[event.account_id], "kind": kind, **detail}


def _tick(run: _Run, at_s: Decimal, now: datetime) -> None:
    tick_run = revaluation_tick_run(now=now)
    tick = tick_run.start.tick
    if tick is None:
        raise ApplicationError(f"The revaluation tick did not start: {tick_run.start.skipped}")
    liquidations = {}
    for account_id, tick_id in tick_run.to_liquidate:
        before = _net_exposure(account_id)
        done = liquidation_run(account_id=account_id, tick_id=tick_id, now=now)
        liquidations[run.names[account_id]] = {
            "status": done.status,
            "cross_net_exposure_before": before,
            "cross_net_exposure_after": _net_exposure(account_id),
        }
    text = as_text(at_s)
    # Funding and expiry settle before the tick values the accounts: their events come first.
    run.events += _cash_flow_events(run, text)
    for event in AccountEvent.objects.filter(tick=tick).order_by("pk"):
        row = _event(run, text, event)
        if row is not None:
            run.events.append(row)
    ratios = dict(snapshots_as_of(tick).values_list("account_id", "margin_ratio"))
    run.timeline.append(
        {
            "at_s": text,
            "insurance_fund": _fund_balances(),
            "margin_ratio": {
                name: None if ratios.get(pk) is None else as_text(ratios[pk])
                for pk, name in run.names.items()
            },
            "liquidations": liquidations,
            "liquidation_runs": Liquidation.objects.filter(tick=tick).count(),
        }
    )


def _cash_flow_events(run: _Run, at_s: str) -> list[dict]:
    """The funding payments and futures settlements booked since the last step: `funding`
    (`amount` signed for the account: + received) per position and funding time, then
    `settlement` per position a future's expiry closed (at the TWAP settlement price)."""
    events = []
    payments = (
        FundingPayment.objects.filter(pk__gt=run.last_payment)
        .select_related("funding_rate__instrument", "position")
        .order_by("pk")
    )
    for payment in payments:
        run.last_payment = payment.pk
        rate = payment.funding_rate
        events.append(
            {
                "at_s": at_s,
                "account": run.names[payment.position.margin_account_id],
                "kind": "funding",
                "symbol": rate.instrument.symbol,
                "amount": as_text(payment.amount),
                "rate": as_text(rate.rate),
                "mark_price": as_text(rate.mark_price),
                "funding_time_s": as_text(
                    Decimal(str((rate.funding_time - run.start).total_seconds()))
                ),
            }
        )
    fills = (
        Fill.objects.filter(pk__gt=run.last_settlement, reason=Fill.Reason.SETTLEMENT)
        .select_related("position__instrument")
        .order_by("pk")
    )
    for fill in fills:
        run.last_settlement = fill.pk
        events.append(
            {
                "at_s": at_s,
                "account": run.names[fill.position.margin_account_id],
                "kind": "settlement",
                "symbol": fill.position.instrument.symbol,
                "side": "long" if fill.quantity < 0 else "short",
                "quantity": as_text(abs(fill.quantity)),
                "price": as_text(fill.price),
                "realized_pnl": as_text(fill.realized_pnl),
            }
        )
    return events


def _net_exposure(account_id: int) -> dict[str, str]:
    """Signed quantity of each underlying the account's cross pool holds (isolated positions
    are margined, and liquidated, on their own)."""
    net: dict[str, Decimal] = {}
    cross = Position.objects.filter(margin_account_id=account_id, margin_mode="cross")
    for underlying, quantity in cross.values_list("instrument__underlying__symbol", "quantity"):
        net[underlying] = net.get(underlying, Decimal(0)) + quantity
    return {name: as_text(q) for name, q in sorted(net.items())}


def _account_result(account: MarginAccount) -> dict:
    quote = figures_now(account).quote
    wallet = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.WALLET, margin_account=account
    ).order_by("asset__symbol")
    positions = Position.objects.filter(margin_account=account).exclude(quantity=0)
    return {
        "state": account.state,
        "reduce_only": account.reduce_only,
        "margin_ratio": None
        if quote.margin_balance <= 0 or quote.margin_ratio is None
        else as_text(quote.margin_ratio.quantize(Decimal("1e-8"))),
        "margin_balance": as_text(quote.margin_balance.quantize(Decimal("1e-8"))),
        "wallet": {
            row.asset.symbol: as_text(row.balance) for row in wallet.select_related("asset")
        },
        "positions": [
            {
                "symbol": p.instrument.symbol,
                "side": "long" if p.quantity > 0 else "short",
                "quantity": as_text(abs(p.quantity)),
                "margin_mode": p.margin_mode,
            }
            for p in positions.select_related("instrument").order_by("instrument__symbol")
        ],
    }


def _run_in_sandbox(scenario: Scenario) -> dict:
    run = _Run(start=timezone.now())
    reference_data_ensure()
    version = parameters_override(scenario.parameters)
    _fund_open(scenario.insurance_fund)
    # Every asset starts at its seeded price, carried forward until a step names it.
    market = ScenarioMarket(index=dict(AssetPrice.objects.values_list("asset__symbol", "price")))
    for n, step in enumerate(scenario.prices):
        market.check(step, f"prices[{n}]")
    first, *rest = scenario.prices
    now = run.start + timedelta(seconds=float(first.at_s))
    market.apply(first, now=now)
    for n, spec in enumerate(scenario.accounts):
        _account_build(spec, n, run, version)
    steps = [(first, now)] + [
        (step, run.start + timedelta(seconds=float(step.at_s))) for step in rest
    ]
    for n, (step, at) in enumerate(steps):
        rejected = market.apply(step, now=at) if n else []
        for row in rejected:
            run.events.append(
                {
                    "at_s": as_text(step.at_s),
                    "kind": "price_rejected",
                    "asset": row.symbol,
                    "venue": row.source,
                    "price": as_text(row.price),
                    "reason": row.reason,
                }
            )
        _tick(run, step.at_s, at)
    differences = ledger_differences()
    accounts = MarginAccount.objects.filter(pk__in=run.names).order_by("pk")
    return {
        "ticks": len(steps),
        "events": run.events,
        "accounts": {run.names[a.pk]: _account_result(a) for a in accounts},
        "insurance_fund": _fund_balances(),
        "timeline": run.timeline,
        "ledger": {
            "balanced": differences.clean,
            "differences": len(differences.assets_not_zero)
            + len(differences.journals_not_balanced)
            + len(differences.balances_off)
            + differences.entries_in_wrong_asset,
        },
    }


def scenario_run(scenario: Scenario) -> dict:
    """The scenario's result; nothing it did is kept."""
    result: dict = {}
    with scenario_sandbox():
        result = _run_in_sandbox(scenario)
    return result


@dataclass(frozen=True)
class ScenarioOutcome:
    """A run as the command would end it: its output and exit status 0, or status 1 and the
    message of the refusal that stopped the pipeline (no output)."""

    output: dict | None
    exit_status: int
    error: str
    duration_ms: int


def scenario_outcome(scenario: Scenario) -> ScenarioOutcome:
    """Run the scenario in its sandbox; bad input found there (an unknown symbol, a refused
    parameter) still raises `ScenarioError`."""
    started = time.monotonic()
    try:
        output, status, error = scenario_run(scenario), 0, ""
    except ApplicationError as failure:
        output, status, error = None, 1, failure.message
    return ScenarioOutcome(output, status, error, round((time.monotonic() - started) * 1000))
