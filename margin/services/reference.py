"""Reference data: the demo seed of assets, instruments, credit tiers and the first parameter
version, and the scale book's extra markets."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from margin import reference_data
from margin.models import (
    Asset,
    AssetPrice,
    Bracket,
    CreditTierTerms,
    Instrument,
    MarkPrice,
    ParameterVersion,
    VolatilityFloor,
)
from margin.models import CreditTier as CreditTierRow
from margin.models import (
    HaircutTier as HaircutTierRow,
)
from margin.selectors.parameters import parameters_in_force
from margin.services.ledger import house_accounts_ensure


def _markets_ensure(asset_rows: dict, instrument_rows: dict) -> tuple[dict, dict]:
    """Assets and instruments of a reference-data table, with opening prices, created where
    missing: symbol → row."""
    now = timezone.now()
    for symbol, (name, is_settlement, price, _tiers) in asset_rows.items():
        asset, _ = Asset.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "is_settlement": is_settlement}
        )
        AssetPrice.objects.get_or_create(
            asset=asset, defaults={"price": Decimal(price), "updated_at": now}
        )
    assets = {asset.symbol: asset for asset in Asset.objects.all()}
    instruments = {}
    for symbol, (kind, underlying, expiry, mark, _rows) in instrument_rows.items():
        instruments[symbol], _ = Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={"kind": kind, "underlying": assets[underlying], "expiry": expiry},
        )
        MarkPrice.objects.get_or_create(
            instrument=instruments[symbol],
            defaults={"mark_price": Decimal(mark), "index_price": Decimal(mark), "updated_at": now},
        )
    house_accounts_ensure(assets=[assets[symbol] for symbol in asset_rows])
    return assets, instruments


def _terms_add(
    version: ParameterVersion,
    assets: dict,
    instruments: dict,
    asset_rows: dict,
    instrument_rows: dict,
) -> None:
    HaircutTierRow.objects.bulk_create(
        HaircutTierRow(version=version, asset=assets[symbol], floor=floor, ratio=ratio)
        for symbol, (*_, asset_tiers) in asset_rows.items()
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
        for symbol, (*_, rows) in instrument_rows.items()
        for floor, mmr, max_leverage in rows
    )
    VolatilityFloor.objects.bulk_create(
        VolatilityFloor(
            version=version,
            asset=assets[symbol],
            daily_vol=Decimal(
                reference_data.VOLATILITY_FLOORS.get(
                    symbol, reference_data.DEFAULT_VOLATILITY_FLOOR
                )
            ),
        )
        for symbol in asset_rows
    )


@transaction.atomic
def reference_data_ensure() -> ParameterVersion:
    """Seed the demo assets, instruments, credit tiers, version 1 of their terms, opening prices
    and the house ledger accounts; rerunning changes nothing already there."""
    assets, instruments = _markets_ensure(reference_data.ASSETS, reference_data.INSTRUMENTS)
    tiers = {}
    for code, (name, rank, _haircut_scale, _mm_scale) in reference_data.CREDIT_TIERS.items():
        tiers[code], _ = CreditTierRow.objects.get_or_create(
            code=code, defaults={"name": name, "rank": rank}
        )
    version, created = ParameterVersion.objects.get_or_create(
        number=1,
        defaults={
            "effective_at": reference_data.FIRST_VERSION_EFFECTIVE_AT,
            "note": "Demo reference data: Binance BTCUSDT/ETHUSDT brackets (2024-10).",
        },
    )
    if created:
        _terms_add(version, assets, instruments, reference_data.ASSETS, reference_data.INSTRUMENTS)
        CreditTierTerms.objects.bulk_create(
            CreditTierTerms(version=version, tier=tiers[code], haircut_scale=haircut, mm_scale=mm)
            for code, (_name, _rank, haircut, mm) in reference_data.CREDIT_TIERS.items()
        )
    return parameters_in_force()


# What a new version copies from the one in force besides its children.
NOT_COPIED = {"id", "number", "effective_at", "created_at", "created_by", "note"}


@transaction.atomic
def book_reference_ensure() -> ParameterVersion:
    """The scale book's extra markets (`reference_data.BOOK_*`), added in a new parameter
    version effective now that copies the one in force; nothing when they are already in it."""
    current = reference_data_ensure()
    priced = set(
        Bracket.objects.filter(version=current).values_list("instrument__symbol", flat=True)
    )
    if set(reference_data.BOOK_INSTRUMENTS) <= priced:
        return current
    assets, instruments = _markets_ensure(
        reference_data.BOOK_ASSETS, reference_data.BOOK_INSTRUMENTS
    )
    latest = ParameterVersion.objects.order_by("-number").values_list("number", flat=True)[0]
    version = ParameterVersion.objects.create(
        number=latest + 1,
        effective_at=timezone.now(),
        note="Scale book markets added: " + ", ".join(reference_data.BOOK_INSTRUMENTS),
        **{
            f.name: getattr(current, f.name)
            for f in ParameterVersion._meta.concrete_fields
            if f.name not in NOT_COPIED
        },
    )
    for model in (HaircutTierRow, Bracket, CreditTierTerms, VolatilityFloor):
        rows = list(model.objects.filter(version=current))
        for row in rows:
            row.pk, row.version = None, version
        model.objects.bulk_create(rows)
    _terms_add(
        version, assets, instruments, reference_data.BOOK_ASSETS, reference_data.BOOK_INSTRUMENTS
    )
    return version
