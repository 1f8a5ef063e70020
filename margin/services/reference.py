"""Reference data: the parameter version in force, the demo seed, and the engine's view of a
version (bracket tables, haircut tiers, credit tiers), cached per version."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from django.db import transaction
from django.utils import timezone

from margin import reference_data
from margin.engine.types import BracketTable, CreditTier, HaircutTier
from margin.errors import ApplicationError
from margin.models import (
    Asset,
    AssetPrice,
    Bracket,
    CreditTierTerms,
    Instrument,
    MarkPrice,
    ParameterVersion,
)
from margin.models import CreditTier as CreditTierRow
from margin.models import (
    HaircutTier as HaircutTierRow,
)
from margin.services.ledger import house_accounts_ensure
from margin.services.sql import rows, table


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


def engine_terms(version: ParameterVersion) -> EngineTerms:
    """The engine objects of `version`; built once per version (versions are immutable)."""
    # The primary key rides along with the number: a test database reuses numbers, never pks.
    return _engine_terms(version.pk, version.number)


def terms_in_force(at: datetime | None = None) -> EngineTerms:
    """`engine_terms(parameters_in_force(at))` for the hot path: one small query when cached."""
    found = rows(
        f"SELECT id, number FROM {table(ParameterVersion)} WHERE effective_at <= %s "
        "ORDER BY effective_at DESC, number DESC LIMIT 1",
        [at or timezone.now()],
    )
    if not found:
        parameters_in_force(at)  # raises the error that says what to do
    return _engine_terms(*found[0])


@lru_cache(maxsize=16)
def _engine_terms(version_pk: int, version_number: int) -> EngineTerms:
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
    )


@transaction.atomic
def reference_data_ensure() -> ParameterVersion:
    """Seed the demo assets, instruments, credit tiers, version 1 of their terms, opening prices
    and the house ledger accounts; rerunning changes nothing already there."""
    now = timezone.now()
    assets = {}
    for symbol, (name, is_settlement, price, _tiers) in reference_data.ASSETS.items():
        assets[symbol], _ = Asset.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "is_settlement": is_settlement}
        )
        AssetPrice.objects.get_or_create(
            asset=assets[symbol], defaults={"price": Decimal(price), "updated_at": now}
        )
    instruments = {}
    for symbol, (kind, underlying, expiry, mark, _rows) in reference_data.INSTRUMENTS.items():
        instruments[symbol], _ = Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={"kind": kind, "underlying": assets[underlying], "expiry": expiry},
        )
        MarkPrice.objects.get_or_create(
            instrument=instruments[symbol],
            defaults={"mark_price": Decimal(mark), "index_price": Decimal(mark), "updated_at": now},
        )
    tiers = {}
    for code, (name, rank, _haircut_scale, _mm_scale) in reference_data.CREDIT_TIERS.items():
        tiers[code], _ = CreditTierRow.objects.get_or_create(
            code=code, defaults={"name": name, "rank": rank}
        )
    house_accounts_ensure(assets=list(assets.values()))
    version, created = ParameterVersion.objects.get_or_create(
        number=1,
        defaults={
            "effective_at": reference_data.FIRST_VERSION_EFFECTIVE_AT,
            "note": "Demo reference data: Binance BTCUSDT/ETHUSDT brackets (2024-10).",
        },
    )
    if created:
        HaircutTierRow.objects.bulk_create(
            HaircutTierRow(version=version, asset=assets[symbol], floor=floor, ratio=ratio)
            for symbol, (*_, asset_tiers) in reference_data.ASSETS.items()
            for floor, ratio in asset_tiers
        )
        Bracket.objects.bulk_create(
            Bracket(
                version=version,
                instrument=instruments[symbol],
                floor=floor,
                mmr=mmr,
                max_leverage=max_leverage,
            )
            for symbol, (*_, rows) in reference_data.INSTRUMENTS.items()
            for floor, mmr, max_leverage in rows
        )
        CreditTierTerms.objects.bulk_create(
            CreditTierTerms(version=version, tier=tiers[code], haircut_scale=haircut, mm_scale=mm)
            for code, (_name, _rank, haircut, mm) in reference_data.CREDIT_TIERS.items()
        )
    return parameters_in_force()
