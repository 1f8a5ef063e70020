"""The risk parameters: the version in force, a version as the engine takes it (cached per
version, versions are immutable), and a version's child tables for display."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.utils import timezone

from margin import reference_data
from margin.db import rows, table
from margin.engine.types import BracketTable, CreditTier, HaircutTier
from margin.errors import ApplicationError
from margin.models import (
    Bracket,
    CreditTierTerms,
    ParameterVersion,
    VolatilityFloor,
)
from margin.models import HaircutTier as HaircutTierRow


def parameters_in_force(at: datetime | None = None) -> ParameterVersion:
    """The latest version whose `effective_at` is not after `at` (now by default)."""
    version = (
        ParameterVersion.objects.filter(effective_at__lte=at or timezone.now())
        .order_by("-effective_at", "-number")
        .first()
    )
    if version is None:
        raise ApplicationError(
            "No risk parameters are in force: run `manage.py seed_reference` first."
        )
    return version


@dataclass(frozen=True)
class EngineTerms:
    """One parameter version as the engine takes it, keyed by symbol / tier code."""

    version_number: int
    brackets: dict[str, BracketTable]
    haircuts: dict[str, tuple[HaircutTier, ...]]
    credit_tiers: dict[str, CreditTier]
    taker_fee_rate: Decimal
    liquidation_fee_rate: Decimal
    margin_call_ratio: Decimal
    volatility_floors: dict[str, Decimal]
    liquidity_impact_coefficient: Decimal = Decimal(1)
    stress_horizon_days: Decimal = Decimal(1)
    concentration_limit_share: Decimal = Decimal(1)
    concentration_floor_usd: Decimal = Decimal(0)

    def volatility_floor(self, symbol: str) -> Decimal:
        """The asset's published σ floor per day; an asset the version has none for takes the
        highest floor the version publishes (fail closed), or the reference data's default."""
        if symbol in self.volatility_floors:
            return self.volatility_floors[symbol]
        return max(
            self.volatility_floors.values(),
            default=Decimal(reference_data.DEFAULT_VOLATILITY_FLOOR),
        )


def engine_terms(version: ParameterVersion) -> EngineTerms:
    """The engine objects of `version`; built once per version and listing (a version's terms
    never change, but a future listed at an expiry adds its brackets to the versions)."""
    # The primary key rides along with the number: a test database reuses numbers, never pks.
    listed = rows(
        f"SELECT COALESCE(max(id), 0) FROM {table(Bracket)} WHERE version_id = %s", [version.pk]
    )[0][0]
    return _engine_terms(version.pk, version.number, listed)


def terms_in_force(at: datetime | None = None) -> EngineTerms:
    """`engine_terms(parameters_in_force(at))` for the hot path: one small query when cached."""
    found = rows(
        f"SELECT v.id, v.number, (SELECT COALESCE(max(b.id), 0) FROM {table(Bracket)} b "
        f"WHERE b.version_id = v.id) FROM {table(ParameterVersion)} v WHERE v.effective_at <= %s "
        "ORDER BY v.effective_at DESC, v.number DESC LIMIT 1",
        [at or timezone.now()],
    )
    if not found:
        parameters_in_force(at)  # raises the error that says what to do
    return _engine_terms(*found[0])


@lru_cache(maxsize=16)
def _engine_terms(version_pk: int, version_number: int, brackets_listed: int) -> EngineTerms:
    """`brackets_listed` (the version's highest bracket id) only keys the cache: a listing
    builds the terms again, in every process."""
    version = ParameterVersion.objects.get(pk=version_pk)
    bracket_rows: dict[str, list[dict[str, Decimal]]] = {}
    for symbol, floor, mmr, max_leverage in (
        Bracket.objects.filter(version=version)
        .values_list("instrument__symbol", "floor", "mmr", "max_leverage")
        .order_by("instrument__symbol", "floor")
    ):
        bracket_rows.setdefault(symbol, []).append(
            {"floor": floor, "mmr": mmr, "max_leverage": max_leverage}
        )
    haircuts: dict[str, list[HaircutTier]] = {}
    for symbol, floor, ratio in (
        HaircutTierRow.objects.filter(version=version)
        .values_list("asset__symbol", "floor", "ratio")
        .order_by("asset__symbol", "floor")
    ):
        haircuts.setdefault(symbol, []).append(HaircutTier(floor=floor, ratio=ratio))
    return EngineTerms(
        version_number=version.number,
        brackets={symbol: BracketTable.build(rows) for symbol, rows in bracket_rows.items()},
        haircuts={symbol: tuple(tiers) for symbol, tiers in haircuts.items()},
        credit_tiers={
            code: CreditTier(haircut_scale=haircut_scale, mm_scale=mm_scale)
            for code, haircut_scale, mm_scale in CreditTierTerms.objects.filter(
                version=version
            ).values_list("tier__code", "haircut_scale", "mm_scale")
        },
        taker_fee_rate=version.taker_fee_rate,
        liquidation_fee_rate=version.liquidation_fee_rate,
        margin_call_ratio=version.margin_call_ratio,
        liquidity_impact_coefficient=version.liquidity_impact_coefficient,
        stress_horizon_days=version.stress_horizon_days,
        concentration_limit_share=version.concentration_limit_share,
        concentration_floor_usd=version.concentration_floor_usd,
        volatility_floors=dict(
            VolatilityFloor.objects.filter(version=version).values_list(
                "asset__symbol", "daily_vol"
            )
        ),
    )


def version_terms(version: ParameterVersion) -> dict:
    """A version's child tables grouped for display: brackets per instrument, haircut tiers per
    asset, credit-tier scales, the stress margin's volatility floors."""
    brackets: dict[str, list] = {}
    for row in Bracket.objects.filter(version=version).select_related("instrument"):
        brackets.setdefault(row.instrument.symbol, []).append(row)
    haircuts: dict[str, list] = {}
    for row in HaircutTierRow.objects.filter(version=version).select_related("asset"):
        haircuts.setdefault(row.asset.symbol, []).append(row)
    return {
        "brackets": brackets,
        "haircuts": haircuts,
        "credit_terms": CreditTierTerms.objects.filter(version=version)
        .select_related("tier")
        .order_by("tier__rank"),
        "volatility_floors": VolatilityFloor.objects.filter(version=version)
        .select_related("asset")
        .order_by("asset__symbol"),
    }


def disclosed_versions(*, at: datetime | None = None):
    """Every version, newest first, with the one in force and any scheduled ones marked; what
    the public disclosure page lists."""
    now = at or timezone.now()
    in_force = parameters_in_force(now)
    versions = list(ParameterVersion.objects.order_by("-effective_at", "-number"))
    return in_force, [
        {"version": v, "in_force": v.pk == in_force.pk, "scheduled": v.effective_at > now}
        for v in versions
    ]
