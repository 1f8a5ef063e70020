"""Risk parameter changes: validated, previewed over the whole book, proposed for four-eyes
approval, and on approval written as a new `ParameterVersion` (a copy of the one in force with
the changes), effective now or at a chosen time. Versions are never edited.

A change's payload:
`{"fields": {"warning_ratio": "0.55", ...}, "brackets": {"BTCUSDT": [{"floor", "mmr",
"max_leverage"}, ...]}, "haircuts": {"BTC": [{"floor", "ratio"}, ...]},
"credit_terms": {"standard": {"haircut_scale", "mm_scale"}}, "volatility_floors": {"BTC":
"0.03", ...}, "effective_at": ISO time | null}` (every number a decimal string; any part may be
left out). A volatility floor is an asset's published daily σ floor in the stress margin.
"""

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation

import numpy as np
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from margin.engine.errors import EngineInputError
from margin.engine.option_stress import HeldOptions, with_options
from margin.engine.parameter_impact import parameter_impact
from margin.engine.parameters import (
    SCALAR_NAMES,
    NumberLimit,
    ParameterVersionInput,
    parameter_problems,
)
from margin.engine.states import Thresholds, next_levels
from margin.engine.stress import stress_margin
from margin.engine.types import BracketTable, CreditTier, HaircutTier
from margin.engine.vector import BracketMatrix, HaircutMatrix, Revaluation, revalue
from margin.errors import ApplicationError
from margin.models import (
    Asset,
    Bracket,
    CreditTierTerms,
    Instrument,
    MarginAccount,
    ParameterVersion,
    Proposal,
    RevaluationTick,
    VolatilityFloor,
)
from margin.models import CreditTier as CreditTierRow
from margin.models import (
    HaircutTier as HaircutTierRow,
)
from margin.selectors.book import desk_book, held_options
from margin.selectors.parameters import engine_terms, parameters_in_force
from margin.selectors.volatility import stress_model
from margin.services.audit import audit_record

# The version's own figures a change may set (its child tables are set per symbol): the
# engine's validator names them once.
SCALAR_FIELDS = SCALAR_NAMES
INTEGER_FIELDS = ("price_guard_max_age_s", "price_guard_min_sources", "margin_call_deadline_s")
THRESHOLDS = ("warning_ratio", "margin_call_ratio", "liquidation_ratio")


def _decimal(value, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as error:
        raise ApplicationError(f"{field}: not a number.", extra={field: "Not a number."}) from error
    if not number.is_finite():
        raise ApplicationError(f"{field}: not a number.", extra={field: "Not a number."})
    return number


def _scalars(version: ParameterVersion, changes: dict) -> dict[str, Decimal | int]:
    """The version's scalars with the changes read in; whether they make sense together is
    the engine's validator's to say (`validate_parameter_version`)."""
    values = {name: getattr(version, name) for name in SCALAR_FIELDS}
    for name, raw in changes.items():
        if name not in SCALAR_FIELDS:
            raise ApplicationError(f"{name} is not a risk parameter.", extra={name: "Unknown."})
        number = _decimal(raw, name)
        if name in INTEGER_FIELDS:
            if number != number.to_integral_value():
                raise ApplicationError(f"{name}: must be a whole number.", extra={name: "Bad."})
            number = int(number)
        values[name] = number
    return values


def _column_limit(field) -> NumberLimit:
    if isinstance(field, models.DecimalField):
        return NumberLimit(max_digits=field.max_digits, decimal_places=field.decimal_places)
    _, maximum = connection.ops.integer_field_range(field.get_internal_type())
    return NumberLimit(maximum=maximum)


def parameter_column_limits() -> dict[str, NumberLimit]:
    """What each column of a version and its child rows stores, for the engine's validator."""
    limits = {name: _column_limit(ParameterVersion._meta.get_field(name)) for name in SCALAR_FIELDS}
    children = {
        "bracket": (Bracket, ("floor", "mmr", "max_leverage")),
        "haircut": (HaircutTierRow, ("floor", "ratio")),
        "credit": (CreditTierTerms, ("haircut_scale", "mm_scale")),
        "volatility": (VolatilityFloor, ("daily_vol",)),
    }
    for prefix, (model, names) in children.items():
        for name in names:
            limits[f"{prefix}.{name}"] = _column_limit(model._meta.get_field(name))
    return limits


def parameter_version_check(
    version: ParameterVersion,
    scalars: dict,
    brackets: dict,
    haircuts: dict,
    tiers: dict,
    floors: dict | None = None,
) -> None:
    """The whole version that `version` with these changes would be, through the engine's
    validator: an ApplicationError naming every broken rule (each under its field)."""
    terms = engine_terms(version)
    whole = ParameterVersionInput(
        scalars=scalars,
        brackets={**terms.brackets, **brackets},
        haircuts={**terms.haircuts, **haircuts},
        credit_tiers={**terms.credit_tiers, **tiers},
        volatility_floors={**terms.volatility_floors, **(floors or {})},
    )
    problems = parameter_problems(whole, limits=parameter_column_limits())
    if problems:
        raise ApplicationError(
            "The parameter version is not sound: "
            + "; ".join(f"{p.field}: {p.message}" for p in problems),
            extra={p.field: p.message for p in problems},
        )


def _bracket_table(symbol: str, rows: list[dict]) -> BracketTable:
    try:
        return BracketTable.build(
            [
                {
                    name: _decimal(row.get(name), f"brackets.{symbol}.{name}")
                    for name in ("floor", "mmr", "max_leverage")
                }
                for row in rows
            ]
        )
    except EngineInputError as error:
        message = f"{symbol} brackets{error.field}: {error.message}"
        raise ApplicationError(message, extra={"brackets": message}) from error


def _haircut_tiers(symbol: str, rows: list[dict]) -> tuple[HaircutTier, ...]:
    if not rows:
        message = f"{symbol} haircut tiers: at least one tier (from 0)."
        raise ApplicationError(message, extra={"haircuts": message})
    return tuple(
        HaircutTier(
            floor=_decimal(row.get("floor"), f"haircuts.{symbol}.floor"),
            ratio=_decimal(row.get("ratio"), f"haircuts.{symbol}.ratio"),
        )
        for row in rows
    )


def _credit_tier(code: str, terms: dict) -> CreditTier:
    try:
        return CreditTier(
            haircut_scale=_decimal(terms.get("haircut_scale"), f"credit_terms.{code}"),
            mm_scale=_decimal(terms.get("mm_scale"), f"credit_terms.{code}"),
        )
    except EngineInputError as error:
        message = f"{code}: {error.message}"
        raise ApplicationError(message, extra={"credit_terms": message}) from error


def _known(model, field: str, symbols) -> None:
    found = set(
        model.objects.filter(**{f"{field}__in": list(symbols)}).values_list(field, flat=True)
    )
    unknown = sorted(set(symbols) - found)
    if unknown:
        raise ApplicationError(f"Unknown: {', '.join(unknown)}.")


@dataclass(frozen=True)
class ParameterChange:
    """A change as engine objects, validated against the version it changes."""

    scalars: dict
    brackets: dict[str, BracketTable]
    haircuts: dict[str, tuple[HaircutTier, ...]]
    tiers: dict[str, CreditTier]
    floors: dict[str, Decimal]
    effective_at: datetime | None


def parameter_change_read(payload: dict, *, version: ParameterVersion) -> ParameterChange:
    """The change as engine objects, validated against the version it changes."""
    scalars = _scalars(version, payload.get("fields", {}))
    brackets = {s: _bracket_table(s, rows) for s, rows in payload.get("brackets", {}).items()}
    haircuts = {s: _haircut_tiers(s, rows) for s, rows in payload.get("haircuts", {}).items()}
    tiers = {c: _credit_tier(c, terms) for c, terms in payload.get("credit_terms", {}).items()}
    floors = {
        symbol: _decimal(value, f"volatility_floors.{symbol}")
        for symbol, value in _mapping(payload, "volatility_floors").items()
    }
    _known(Instrument, "symbol", brackets)
    _known(Asset, "symbol", haircuts)
    _known(CreditTierRow, "code", tiers)
    _known(Asset, "symbol", floors)
    effective_at = None
    if payload.get("effective_at"):
        effective_at = parse_datetime(payload["effective_at"])
        if effective_at is None:
            raise ApplicationError("Unreadable effective time.", extra={"effective_at": "Bad."})
    if not (payload.get("fields") or brackets or haircuts or tiers or floors):
        raise ApplicationError("The proposal changes nothing.")
    parameter_version_check(version, scalars, brackets, haircuts, tiers, floors)
    return ParameterChange(scalars, brackets, haircuts, tiers, floors, effective_at)


def _mapping(payload: dict, name: str) -> dict:
    value = payload.get(name) or {}
    if not isinstance(value, dict):
        raise ApplicationError(f"{name} must map symbols to values.", extra={name: "A mapping."})
    return value


def parameter_impact_preview(*, payload: dict) -> dict:
    """The whole book revalued at today's prices under the version in force and under the
    proposal: accounts at or past each threshold, total MM and collateral value. Options are
    revalued in full, as the desk's stress library does (`option_stress.with_options`): each
    at its Black-76 value in the margin balance, an account holding one margined by the grid."""
    version = parameters_in_force()
    change = parameter_change_read(payload, version=version)
    scalars, brackets, haircuts, tiers = (
        change.scalars,
        change.brackets,
        change.haircuts,
        change.tiers,
    )
    terms = engine_terms(version)
    book_slice = desk_book()
    book = book_slice.book
    # Every account's tier (the book is all of them): an IN list of 100k ids costs PostgreSQL
    # far more to parse and plan than the table scan (see `engine_book`).
    tier_codes = dict(MarginAccount.objects.values_list("pk", "credit_tier__code"))
    credit = {**terms.credit_tiers, **tiers}
    codes = [tier_codes[int(pk)] for pk in book_slice.account_ids]
    try:
        proposed = replace(
            book,
            brackets=BracketMatrix.from_tables(
                [brackets.get(s, terms.brackets.get(s)) for s in book.instrument_names]
            ),
            haircuts=HaircutMatrix.from_tiers(
                [haircuts.get(s, terms.haircuts.get(s, ())) for s in book.asset_names]
            ),
            haircut_scale=np.array([float(credit[c].haircut_scale) for c in codes], dtype=float),
            mm_scale=np.array([float(credit[c].mm_scale) for c in codes], dtype=float),
        )
    except EngineInputError as error:
        raise ApplicationError(f"The proposal breaks the engine: {error}") from error
    held = held_options(book_slice)
    proposed_revaluation = _trial_tick(
        proposed, book_slice, version, ParameterVersion(**scalars), change.floors, held
    )
    current = revalue(book, book_slice.marks, book_slice.asset_prices, liquidation_prices=False)
    impact = parameter_impact(
        _with_held(current, held, book_slice.marks),
        proposed_revaluation,
        current_thresholds={name: float(getattr(version, name)) for name in THRESHOLDS},
        proposed_thresholds={name: float(scalars[name]) for name in THRESHOLDS},
    )
    return {
        "version": version.number,
        "accounts": impact.accounts,
        "thresholds": [asdict(t) for t in impact.thresholds],
        "maintenance_margin_now": impact.maintenance_margin_now,
        "maintenance_margin_proposed": impact.maintenance_margin_proposed,
        "maintenance_margin_change": impact.maintenance_margin_change,
        "collateral_value_now": impact.collateral_value_now,
        "collateral_value_proposed": impact.collateral_value_proposed,
        "collateral_value_change": impact.collateral_value_change,
    }


def _trial_stress_model(
    version: ParameterVersion, params: ParameterVersion, asset_names, floors: dict
):
    """The stress model the next tick would use under the proposal: the latest tick's estimate
    and the floors in force with the proposed ones, the proposed k σ and horizon (a model that
    refuses them raises, as the tick would)."""
    latest = (
        RevaluationTick.objects.exclude(volatility={})
        .order_by("-pk")
        .values_list("volatility", flat=True)
        .first()
    )
    return replace(
        stress_model(version, latest or {}, asset_names, floors=floors),
        k=float(params.stress_k_sigma),
        horizon_days=float(params.stress_horizon_days),
    )


def _with_held(revaluation: Revaluation, held: HeldOptions | None, marks) -> Revaluation:
    """The revaluation with the options `held` beside the book revalued in full."""
    if held is None:
        return revaluation
    return with_options(revaluation, held, marks, held.market)[0]


def _trial_tick(
    book,
    book_slice,
    version: ParameterVersion,
    params: ParameterVersion,
    floors: dict,
    held: HeldOptions | None,
):
    """What one revaluation tick does with the proposed version, on a copy of the book at
    today's prices: every figure with liquidation prices, the options `held` revalued in full,
    the stress margin with the proposed k σ and horizon, the state of every account under the
    proposed thresholds. A version under which any of it raises, or gives a figure that is not
    a number, is refused."""
    marks, prices = book_slice.marks, book_slice.asset_prices
    try:
        with np.errstate(all="raise"):
            linear = revalue(book, marks, prices)
        # Outside the strict state: a far out-of-the-money value underflows to 0, as it should.
        revaluation = _with_held(linear, held, marks)
        model = _trial_stress_model(version, params, book.asset_names, floors)
        stress = stress_margin(book, marks, prices, model, revaluation=linear, held=held)
        next_levels(
            np.zeros(book.n_accounts, dtype=np.int64),
            margin_ratio=revaluation.margin_ratio,
            margin_balance=revaluation.margin_balance,
            maintenance_margin=revaluation.account_maintenance_margin,
            thresholds=Thresholds.of(params),
        )
    except (ArithmeticError, ValueError, np.linalg.LinAlgError, FloatingPointError) as error:
        raise ApplicationError(f"The proposed version breaks a revaluation: {error}") from error
    if not np.all(np.isfinite(stress.worst_loss)):
        raise ApplicationError("The proposed version gives a stress loss that is not a number.")
    return revaluation


def _change_summary(version: ParameterVersion, change: ParameterChange) -> str:
    parts = [
        f"{name} {getattr(version, name)} → {value}"
        for name, value in change.scalars.items()
        if Decimal(getattr(version, name)) != Decimal(value)
    ]
    parts += [f"{s} brackets" for s in change.brackets]
    parts += [f"{s} haircut tiers" for s in change.haircuts]
    parts += [f"credit tier {c}" for c in change.tiers]
    floors = engine_terms(version).volatility_floors
    parts += [
        f"{s} volatility floor {floors.get(s, 'none')} → {floor}"
        for s, floor in change.floors.items()
    ]
    return "; ".join(parts) or "no change"


def parameter_version_create(*, proposal: Proposal, actor) -> ParameterVersion:
    """Write the approved change as a new version: a copy of the version in force with the
    changes, effective at the proposal's time (or now, if that is already past). Runs inside the
    approval's transaction; the latest version row is locked so two approvals number in turn."""
    with transaction.atomic():
        list(ParameterVersion.objects.select_for_update().order_by("-number")[:1])
        now = timezone.now()
        base = parameters_in_force(now)
        change = parameter_change_read(proposal.payload, version=base)
        effective_at = max(change.effective_at or now, now)
        number = (ParameterVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
        summary = _change_summary(base, change)
        version = ParameterVersion.objects.create(
            number=number,
            effective_at=effective_at,
            created_by=actor,
            note=f"{summary}. {proposal.reason}",
            **change.scalars,
        )
        _copy_children(base, version, change)
        audit_record(
            action="params.version",
            actor=actor,
            subject=f"params:v{number}",
            before={"version": base.number},
            after={
                "version": number,
                "effective_at": effective_at.isoformat(),
                "changes": summary,
                "proposal": proposal.pk,
                "proposer": proposal.proposer.username,
            },
            reason=proposal.reason,
        )
    return version


def _copy_children(base, version, change: ParameterChange) -> None:
    brackets, haircuts, tiers, floors = (
        change.brackets,
        change.haircuts,
        change.tiers,
        change.floors,
    )
    instruments = dict(Instrument.objects.values_list("symbol", "pk"))
    assets = dict(Asset.objects.values_list("symbol", "pk"))
    codes = dict(CreditTierRow.objects.values_list("code", "pk"))
    Bracket.objects.bulk_create(
        [
            Bracket(
                version=version,
                instrument_id=row.instrument_id,
                floor=row.floor,
                mmr=row.mmr,
                max_leverage=row.max_leverage,
            )
            for row in base.brackets.select_related("instrument")
            if row.instrument.symbol not in brackets
        ]
        + [
            Bracket(
                version=version,
                instrument_id=instruments[symbol],
                floor=b.floor,
                mmr=b.mmr,
                max_leverage=b.max_leverage,
            )
            for symbol, table in brackets.items()
            for b in table.brackets
        ]
    )
    HaircutTierRow.objects.bulk_create(
        [
            HaircutTierRow(version=version, asset_id=row.asset_id, floor=row.floor, ratio=row.ratio)
            for row in base.haircuts.select_related("asset")
            if row.asset.symbol not in haircuts
        ]
        + [
            HaircutTierRow(version=version, asset_id=assets[symbol], floor=t.floor, ratio=t.ratio)
            for symbol, rows in haircuts.items()
            for t in rows
        ]
    )
    VolatilityFloor.objects.bulk_create(
        [
            VolatilityFloor(version=version, asset_id=row.asset_id, daily_vol=row.daily_vol)
            for row in base.volatility_floors.select_related("asset")
            if row.asset.symbol not in floors
        ]
        + [
            VolatilityFloor(version=version, asset_id=assets[symbol], daily_vol=floor)
            for symbol, floor in floors.items()
        ]
    )
    CreditTierTerms.objects.bulk_create(
        [
            CreditTierTerms(
                version=version,
                tier_id=row.tier_id,
                haircut_scale=row.haircut_scale,
                mm_scale=row.mm_scale,
            )
            for row in base.credit_terms.select_related("tier")
            if row.tier.code not in tiers
        ]
        + [
            CreditTierTerms(
                version=version,
                tier_id=codes[code],
                haircut_scale=t.haircut_scale,
                mm_scale=t.mm_scale,
            )
            for code, t in tiers.items()
        ]
    )
