import json
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from margin.models import Asset, Bracket, CreditTierTerms, HaircutTier, Instrument, ParameterVersion
from margin.selectors.parameters import engine_terms, parameters_in_force
from margin.services.reference import reference_data_ensure
from tests.engine.support import VECTORS_DIR

VECTORS = VECTORS_DIR / "binance_brackets_2024_10.json"


def test_reference_data_is_seeded_once_however_often_it_is_ensured(reference):
    # given the seed ran once (fixture); when it runs again
    counts = [m.objects.count() for m in (Asset, Instrument, Bracket, HaircutTier, CreditTierTerms)]
    again = reference_data_ensure()
    # then nothing was added
    assert again == reference
    assert [
        m.objects.count() for m in (Asset, Instrument, Bracket, HaircutTier, CreditTierTerms)
    ] == counts
    assert set(Asset.objects.values_list("symbol", flat=True)) == {
        "USDT",
        "USDC",
        "BTC",
        "ETH",
        "SOL",
    }
    assert Asset.objects.get(is_settlement=True).symbol == "USDT"


def test_binance_brackets_match_the_published_table_with_its_cum(reference):
    # given the published table beside the clone
    published = json.loads(VECTORS.read_text())
    # when the engine's tables are built from the version in force
    terms = engine_terms(reference)
    # then every floor, mmr, max leverage and derived cum agrees
    for symbol in ("BTCUSDT", "ETHUSDT"):
        table = terms.brackets[symbol].brackets
        assert [(b.floor, b.mmr, b.max_leverage, b.cum) for b in table] == [
            (Decimal(r["floor"]), Decimal(r["mmr"]), Decimal(r["max_leverage"]), Decimal(r["cum"]))
            for r in published[symbol]
        ]


def test_credit_tiers_scale_haircuts_and_maintenance(reference):
    terms = engine_terms(reference)
    assert {code: (t.haircut_scale, t.mm_scale) for code, t in terms.credit_tiers.items()} == {
        "standard": (1, 1),
        "vip": (Decimal("0.8"), Decimal("0.9")),
        "institutional": (Decimal("0.6"), Decimal("0.8")),
        "restricted": (Decimal("1.5"), Decimal("1.25")),
    }


def test_the_version_in_force_is_the_latest_effective_one(reference):
    # given a second version effective tomorrow, with a higher fee
    tomorrow = timezone.now() + timedelta(days=1)
    later = ParameterVersion.objects.create(
        number=2, effective_at=tomorrow, taker_fee_rate=Decimal("0.0007")
    )
    # when / then: today version 1 is in force, from tomorrow version 2
    assert parameters_in_force() == reference
    assert parameters_in_force(tomorrow + timedelta(seconds=1)) == later
    assert parameters_in_force(at=reference.effective_at) == reference
    assert engine_terms(later).taker_fee_rate == Decimal("0.0007")


def test_engine_terms_are_built_once_per_version(reference):
    assert engine_terms(reference) is engine_terms(ParameterVersion.objects.get(number=1))
