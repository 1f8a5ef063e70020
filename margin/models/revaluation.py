"""The revaluation job's records: ticks and their shards, margin snapshots, account events and
liquidations."""

import numpy as np
from django.db import models
from django.db.models import JSONField, Value

from margin.models.accounts import AccountState, MarginAccount
from margin.models.reference import MONEY, RATIO, ParameterVersion


class RevaluationTick(models.Model):
    """One revaluation of the whole book on prices frozen when it started."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETE = "complete", "Complete"
        ABANDONED = "abandoned", "Abandoned (shards never reported)"

    started_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    parameter_version = models.ForeignKey(
        ParameterVersion, on_delete=models.PROTECT, related_name="+"
    )
    # Frozen for the whole tick: {instrument symbol: mark}, {asset symbol: index price}.
    marks = models.JSONField(default=dict)
    asset_prices = models.JSONField(default=dict)
    # Symbols whose price was stale at the freeze: the tick revalues but does not liquidate.
    stale_symbols = models.JSONField(default=list, blank=True)
    # Every price not fit to liquidate on at the freeze, stale or uncertain, with why:
    # {symbol: reason} (`margin.selectors.market.unfit_prices`).
    price_doubts = models.JSONField(default=dict, blank=True)
    # The stress model's estimate at the freeze, so every shard stresses on the same one
    # (`margin.selectors.volatility.tick_volatility`): {"assets": [symbol...], "vol": [daily σ or
    # null...], "cov": [[...]], "period_end", "lambda", "half_life_hours", "returns"}; null
    # where an asset has no history (its published floor stands in).
    volatility = models.JSONField(default=dict, blank=True)
    n_shards = models.PositiveIntegerField(default=0)
    n_accounts = models.PositiveIntegerField(default=0)
    # The ids of the funding rates (`FundingRate`) its shards settle, each for its own
    # accounts, before they revalue them.
    funding_rates = models.JSONField(default=list, blank=True, db_default=Value([], JSONField()))
    # The healthy accounts this tick writes a snapshot of besides those at risk, changing state
    # or at the head of the desk's queue: the ids ≡ refresh_class (mod SNAPSHOT_REFRESH_TICKS),
    # one class after the other over complete ticks. Null: every account (the first tick, and
    # every tick before the classes).
    refresh_class = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        get_latest_by = "pk"

    def __str__(self) -> str:
        return f"tick {self.pk} {self.status} @ {self.started_at:%H:%M:%S}"

    @property
    def prices_stale(self) -> bool:
        return bool(self.stale_symbols)

    @property
    def unfit_symbols(self) -> set[str]:
        """Symbols whose price was not fit to liquidate on at the freeze (stale or uncertain)."""
        return set(self.stale_symbols) | set(self.price_doubts)


class RevaluationShard(models.Model):
    """A slice of the accounts of a tick (by id range), computed by one worker task."""

    tick = models.ForeignKey(RevaluationTick, on_delete=models.CASCADE, related_name="shards")
    number = models.PositiveIntegerField()
    first_account_id = models.BigIntegerField()
    last_account_id = models.BigIntegerField()
    completed_at = models.DateTimeField(null=True, blank=True)
    accounts = models.PositiveIntegerField(default=0)
    load_s = models.FloatField(default=0)
    compute_s = models.FloatField(default=0)
    write_s = models.FloatField(default=0)
    # What the desk's queue reads instead of counting and sorting the tick's snapshots:
    # {"counts": {state: n}, "heads": {order: {state: [[lo, hi, account id], ...]}}}
    # (`margin.services.revaluation._queue_summary`); null for shards written before it.
    queue = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["tick", "number"]
        constraints = [
            models.UniqueConstraint(fields=["tick", "number"], name="revaluation_shard_unique")
        ]


class MarginSnapshot(models.Model):
    """An account's figures at one tick. `positions` holds the per-position figures the
    position row and the tick's marks cannot give back, one packed record per position
    (`POSITION_RECORD`: position_id, maintenance_margin, bracket, liquidation_price,
    bankruptcy_price; nan where the engine has no price); `positions_of` unpacks them."""

    # Big-endian, as PostgreSQL's int8send/float8send (migration 0031 packed the JSON rows so):
    # the tick writes a shard's records with one array copy instead of formatting 375,000
    # numbers as JSON, and PostgreSQL stores them without parsing.
    POSITION_RECORD = np.dtype(
        [
            ("position_id", ">i8"),
            ("maintenance_margin", ">f8"),
            ("bracket", ">i8"),
            ("liquidation_price", ">f8"),
            ("bankruptcy_price", ">f8"),
        ]
    )

    # 100,000 rows a tick: no index beyond what reads need. (account, tick) is the unique
    # constraint's index (the account's history, newest first); tick is its foreign key's.
    # The desk queue's own indexes are gone (migrations 0012, 0036): its pages come from the
    # shards' summaries and each account's latest row, never in an index's order.
    # No database foreign keys: their checks at commit (two per row, ~0.2 s per shard of 25,000)
    # were the largest part of a shard's commit. The tick writes only accounts it has just read
    # and its own tick, and Django's CASCADE still deletes an account's or a tick's snapshots.
    account = models.ForeignKey(
        MarginAccount,
        on_delete=models.CASCADE,
        related_name="snapshots",
        db_index=False,
        db_constraint=False,
    )
    tick = models.ForeignKey(
        RevaluationTick, on_delete=models.CASCADE, related_name="snapshots", db_constraint=False
    )
    collateral_value = models.DecimalField(**MONEY)
    unrealized_pnl = models.DecimalField(**MONEY)
    margin_balance = models.DecimalField(**MONEY)
    maintenance_margin = models.DecimalField(**MONEY)
    initial_margin = models.DecimalField(**MONEY)
    margin_ratio = models.DecimalField(**RATIO, null=True, blank=True)
    withdrawable = models.DecimalField(**MONEY)
    stress_margin = models.DecimalField(**MONEY, default=0)
    # Σ |quantity| × mark of every position, cross and isolated: the desk filters on size.
    gross_notional = models.DecimalField(**MONEY, default=0)
    # The options grid (OPTIONS.md) of an account on it: Σ scan risk over its underlyings, and
    # the scenario that sets the largest one ("BTC −16 % · vol +40 %"), for the desk's queue.
    scan_risk = models.DecimalField(**MONEY, db_default=0)
    binding_scenario = models.CharField(max_length=48, blank=True, db_default="")
    state = models.CharField(max_length=16, choices=AccountState.choices)
    positions = models.BinaryField(db_default=b"")

    class Meta:
        ordering = ["account", "-tick"]
        constraints = [
            models.UniqueConstraint(fields=["account", "tick"], name="snapshot_one_per_tick")
        ]

    @classmethod
    def positions_of(cls, packed: bytes | memoryview) -> list[dict]:
        """The per-position figures of a snapshot's `positions`, None where there is no price."""
        records = np.frombuffer(packed, dtype=cls.POSITION_RECORD).tolist()
        return [
            {
                name: None if value != value else value  # nan ≠ nan: no price
                for name, value in zip(cls.POSITION_RECORD.names, record, strict=True)
            }
            for record in records
        ]


class AccountEvent(models.Model):
    """Something the revaluation job did to an account: a state change, a liquidation step."""

    class Kind(models.TextChoices):
        STATE_CHANGE = "state_change", "State change"
        LIQUIDATION = "liquidation", "Liquidation"
        INSURANCE = "insurance", "Insurance fund cover"
        ADL = "adl", "Auto-deleveraging"
        WRITE_OFF = "write_off", "Loss written off (socialized)"
        STALE_BLOCKED = "stale_blocked", "Liquidation held back by a stale price"
        REDUCE_ONLY = "reduce_only", "Reduce-only set or lifted after a margin call"

    account = models.ForeignKey(MarginAccount, on_delete=models.CASCADE, related_name="events")
    tick = models.ForeignKey(
        RevaluationTick, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_state = models.CharField(max_length=16, choices=AccountState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=AccountState.choices, blank=True)
    margin_ratio = models.DecimalField(**RATIO, null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["account", "-at"])]


class Liquidation(models.Model):
    """At most one liquidation per account and tick: a redelivered task finds it done."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        NOT_NEEDED = "not_needed", "No longer needed"
        HELD = "held", "Held back by a material stale price"

    account = models.ForeignKey(
        MarginAccount, on_delete=models.PROTECT, related_name="liquidations"
    )
    tick = models.ForeignKey(RevaluationTick, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    margin_ratio_before = models.DecimalField(**RATIO, null=True, blank=True)
    margin_ratio_after = models.DecimalField(**RATIO, null=True, blank=True)
    fee = models.DecimalField(**MONEY, default=0)
    insurance_cover = models.DecimalField(**MONEY, default=0)
    adl_cover = models.DecimalField(**MONEY, default=0)
    steps = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["account", "tick"], name="liquidation_one_per_tick")
        ]
