"""Reference data: assets, instruments and credit tiers, with their risk terms versioned.

Identities (an asset, an instrument, a credit tier) never change; their risk terms (haircut
tiers, leverage brackets, credit-tier scales, state thresholds...) belong to a `ParameterVersion`.
The version in force at a time is the latest one whose `effective_at` is not after it, so a past
figure can always be explained with the parameters then in force.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

MONEY = {"max_digits": 38, "decimal_places": 18}
RATIO = {"max_digits": 20, "decimal_places": 12}


class Asset(models.Model):
    """A collateral or underlying asset (BTC, ETH, USDT...). Prices are in USD."""

    symbol = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=64)
    is_settlement = models.BooleanField(
        default=False, help_text="PnL, fees and isolated margin settle in this asset (USDT)."
    )

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class Instrument(models.Model):
    """A linear USD-quoted perpetual or dated future on an underlying asset, or a European,
    cash-settled option on it (one contract = one unit of the underlying, premium and
    settlement in the settlement asset)."""

    class Kind(models.TextChoices):
        PERPETUAL = "perpetual", "Perpetual"
        FUTURE = "future", "Dated future"
        OPTION = "option", "Option"

    class OptionType(models.TextChoices):
        CALL = "call", "Call"
        PUT = "put", "Put"

    symbol = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERPETUAL)
    underlying = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="instruments")
    expiry = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Perpetual funding (Binance USD-M): the interval in market hours, the interest component
    # per 8 hours and the published cap/floor of the rate.
    funding_interval_hours = models.PositiveSmallIntegerField(default=8)
    funding_interest_per_8h = models.DecimalField(**RATIO, default=Decimal("0.0001"))
    funding_rate_cap = models.DecimalField(**RATIO, default=Decimal("0.0075"))
    # Dated futures: the delivery price (index TWAP of the last 30 minutes), once settled, and
    # when holders were told of the coming expiry.
    settlement_price = models.DecimalField(**MONEY, null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    # Options: the strike (USD) and call or put; "" and null for linear contracts.
    strike = models.DecimalField(**MONEY, null=True, blank=True, db_default=None)
    option_type = models.CharField(
        max_length=4, choices=OptionType.choices, blank=True, default="", db_default=""
    )

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="perpetual", expiry__isnull=True)
                | models.Q(kind="future", expiry__isnull=False)
                | models.Q(
                    kind="option",
                    expiry__isnull=False,
                    strike__gt=0,
                    option_type__in=["call", "put"],
                ),
                name="instrument_dated_has_expiry",
            ),
            models.CheckConstraint(
                condition=models.Q(funding_interval_hours__gte=1, funding_rate_cap__gt=0),
                name="instrument_funding_terms_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_option(self) -> bool:
        return self.kind == self.Kind.OPTION


class CreditTier(models.Model):
    """An account's credit standing; its scales are versioned in `CreditTierTerms`."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    rank = models.PositiveSmallIntegerField(default=0, help_text="Display order, best first.")

    class Meta:
        ordering = ["rank", "code"]

    def __str__(self) -> str:
        return self.name


class ParameterVersion(models.Model):
    """One complete, immutable set of risk parameters, in force from `effective_at`."""

    number = models.PositiveIntegerField(unique=True)
    effective_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    # Account state thresholds on the margin ratio (MM / margin balance); liquidation at >= 1.
    warning_ratio = models.DecimalField(**RATIO, default=Decimal("0.5"))
    margin_call_ratio = models.DecimalField(**RATIO, default=Decimal("0.8"))
    liquidation_ratio = models.DecimalField(**RATIO, default=Decimal("1"))
    # A state is left only when the ratio is this much below its threshold (no flapping).
    hysteresis = models.DecimalField(**RATIO, default=Decimal("0.05"))
    # After a partial liquidation the ratio must be back under this target.
    liquidation_target_ratio = models.DecimalField(**RATIO, default=Decimal("0.7"))
    # The liquidation clearance fee, to the insurance fund, capped by the margin left.
    liquidation_fee_rate = models.DecimalField(**RATIO, default=Decimal("0.005"))
    liquidation_slippage = models.DecimalField(**RATIO, default=Decimal("0.002"))
    taker_fee_rate = models.DecimalField(**RATIO, default=Decimal("0.0005"))
    # Price guard: an index print further than this from the last accepted one, or a source
    # quote older than max age, is left out.
    price_guard_max_move = models.DecimalField(**RATIO, default=Decimal("0.10"))
    price_guard_max_age_s = models.PositiveIntegerField(default=30)
    # An index needs this many fresh sources within the agreement band of their median, or the
    # last index holds, uncertain; each source counts at most `source_cap` from the median
    # (Binance's single-source cap: 5%).
    price_guard_min_sources = models.PositiveSmallIntegerField(default=2)
    price_guard_agreement_band = models.DecimalField(**RATIO, default=Decimal("0.02"))
    price_guard_source_cap = models.DecimalField(**RATIO, default=Decimal("0.05"))
    # Vol guard (`margin.engine.guard.guarded_vol`): an option series' implied vol moves at most
    # this share of its last one per tick; its surface ages by the price guard's max age. 10 %,
    # as the price guard's move band: a jump's lift (2·|j|, +10 vol points on a 5 % gap) is in
    # within two ticks, a regime switch (2.5× at the short end) in about ten (ln 2.5 / ln 1.1).
    vol_guard_max_move = models.DecimalField(
        **RATIO, default=Decimal("0.10"), db_default=Decimal("0.10")
    )
    # A stale price holds a liquidation back only when what it values is at least this share
    # of the account's maintenance margin or margin balance (the larger); below it, the stale
    # part is valued at its last price less `stale_price_haircut` and the account is liquidated.
    stale_materiality_share = models.DecimalField(
        **RATIO, default=Decimal("0.05"), db_default=Decimal("0.05")
    )
    stale_price_haircut = models.DecimalField(
        **RATIO, default=Decimal("0.1"), db_default=Decimal("0.1")
    )
    # A margin call left unanswered this long turns the account reduce-only.
    margin_call_deadline_s = models.PositiveIntegerField(default=3600, db_default=3600)
    # Stress margin: RiskMetrics EWMA of hourly returns (λ per hour), k σ over the horizon in
    # days, each asset's σ floored (`VolatilityFloor`).
    stress_ewma_lambda = models.DecimalField(**RATIO, default=Decimal("0.94"))
    stress_k_sigma = models.DecimalField(**RATIO, default=Decimal("3"))
    stress_horizon_days = models.DecimalField(**RATIO, default=Decimal("1"))
    # Liquidity (`margin.engine.liquidity`): Y of the square-root impact law, on each market's
    # depth over the stress horizon; an owner holding more than `concentration_limit_share` of
    # an instrument's open interest (or of the floor, while the open interest is below it) may
    # only reduce it.
    liquidity_impact_coefficient = models.DecimalField(
        **RATIO, default=Decimal("1"), db_default=Decimal("1")
    )
    concentration_limit_share = models.DecimalField(
        **RATIO, default=Decimal("0.25"), db_default=Decimal("0.25")
    )
    concentration_floor_usd = models.DecimalField(
        **MONEY, default=Decimal("50000000"), db_default=Decimal("50000000")
    )

    class Meta:
        ordering = ["-number"]
        get_latest_by = "effective_at"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(warning_ratio__lt=models.F("margin_call_ratio"))
                & models.Q(margin_call_ratio__lt=models.F("liquidation_ratio"))
                & models.Q(liquidation_target_ratio__lt=models.F("liquidation_ratio")),
                name="parameter_thresholds_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.number} from {self.effective_at:%Y-%m-%d %H:%M}"


class VolatilityFloor(models.Model):
    """The published floor of an asset's daily volatility in the stress margin: with no price
    history, or a history that did not move, the stress model takes this σ, never zero."""

    version = models.ForeignKey(
        ParameterVersion, on_delete=models.CASCADE, related_name="volatility_floors"
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="volatility_floors")
    daily_vol = models.DecimalField(**RATIO)

    class Meta:
        ordering = ["version", "asset"]
        constraints = [
            models.UniqueConstraint(fields=["version", "asset"], name="volatility_floor_unique"),
            models.CheckConstraint(
                condition=models.Q(daily_vol__gt=0, daily_vol__lt=1),
                name="volatility_floor_in_0_1",
            ),
        ]


class HaircutTier(models.Model):
    """Binance/Bitget style tiered collateral ratio: the USD value above `floor` counts × ratio."""

    version = models.ForeignKey(ParameterVersion, on_delete=models.CASCADE, related_name="haircuts")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="haircut_tiers")
    floor = models.DecimalField(**MONEY)
    ratio = models.DecimalField(**RATIO)

    class Meta:
        ordering = ["version", "asset", "floor"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "asset", "floor"], name="haircut_tier_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(ratio__gte=0, ratio__lte=1, floor__gte=0),
                name="haircut_tier_ratio_in_0_1",
            ),
        ]


class Bracket(models.Model):
    """A leverage bracket of an instrument (Binance USD-M notional brackets); cum is derived."""

    version = models.ForeignKey(ParameterVersion, on_delete=models.CASCADE, related_name="brackets")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="brackets")
    floor = models.DecimalField(**MONEY)
    mmr = models.DecimalField(**RATIO)
    max_leverage = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["version", "instrument", "floor"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "instrument", "floor"], name="bracket_unique_floor"
            ),
            models.CheckConstraint(
                condition=models.Q(mmr__gt=0, mmr__lt=1, max_leverage__gte=1, floor__gte=0),
                name="bracket_values_valid",
            ),
        ]


class CreditTierTerms(models.Model):
    """How a credit tier scales haircuts and maintenance margin in one parameter version."""

    version = models.ForeignKey(
        ParameterVersion, on_delete=models.CASCADE, related_name="credit_terms"
    )
    tier = models.ForeignKey(CreditTier, on_delete=models.PROTECT, related_name="terms")
    haircut_scale = models.DecimalField(**RATIO, default=Decimal("1"))
    mm_scale = models.DecimalField(**RATIO, default=Decimal("1"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "tier"], name="credit_terms_unique"),
            models.CheckConstraint(
                condition=models.Q(haircut_scale__gte=0, mm_scale__gt=0),
                name="credit_terms_positive",
            ),
        ]
