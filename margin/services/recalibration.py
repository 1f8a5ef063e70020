"""Recalibration: a scheduled job reads the recorded index history, estimates the maintenance
rates and collateral haircuts that cover the close-out horizon's moves at the published
confidence (`margin.engine.recalibration`), backtests the rates in force and the proposed ones
(`margin.engine.backtest`), and when an estimate has drifted beyond the threshold drafts a
parameter proposal. The proposal goes through the desk's four-eyes path like any other: a risk
manager approves it with its impact preview and its backtest in view.

The proposer is a service account (`recalibration`, a risk officer that cannot log in), so any
manager may approve it and nobody approves their own estimate.
"""

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from accounts.roles import RISK_OFFICER
from accounts.services import user_ensure
from margin.engine.backtest import coverage_backtest
from margin.engine.recalibration import covering_rate, drifted
from margin.models import AssetPriceHistory, Bracket, HaircutTier, ParameterVersion, Proposal
from margin.selectors.parameters import parameters_in_force
from margin.selectors.recalibration import RECALIBRATION_USERNAME
from margin.services.parameters import parameter_impact_preview
from margin.services.proposals import proposal_create

SERVICE_USERNAME = RECALIBRATION_USERNAME
RATE_STEP = Decimal("0.0001")


@dataclass(frozen=True)
class RecalibrationPolicy:
    """The published terms of the estimate (shown on `/disclosure/`)."""

    confidence: float = 0.99
    close_out_horizon_s: float = 900.0
    """Market time to close a liquidated position (15 minutes): the move margin must cover."""
    collateral_horizon_s: float = 86_400.0
    """Market time to sell collateral of a defaulted account (a day, as CCPs take for
    collateral): the fall a haircut must cover."""
    half_life_s: float = 86_400.0
    """EWMA half-life of the volatility estimate, in market time (a day)."""
    volatility_floor_per_s: float = 0.3 / (365 * 86_400) ** 0.5
    """σ per √second of market time below which no estimate goes: 30% a year."""
    drift_threshold: float = 0.2
    """A rate is proposed when the estimate differs from the rate in force by more than this."""
    history_s: float = 30 * 86_400.0
    """How much market history the estimate reads (what the price history keeps, at most)."""
    sample_s: float = 60.0
    """Market time between two samples of the history."""
    min_samples: int = 120
    """Fewer samples than this estimate nothing (a 1% tail needs a hundred moves to exist)."""


POLICY = RecalibrationPolicy()


def _market_speed() -> float:
    return settings.DEMO_MARKET_SPEED if settings.DEMO_MARKET_ENABLED else 1.0


def index_histories(*, until: datetime, policy: RecalibrationPolicy) -> dict[str, np.ndarray]:
    """Each asset's index on a grid of `policy.sample_s` of market time (the last print of each
    bucket, carried forward), oldest first; assets with fewer than `policy.min_samples` samples
    are left out."""
    speed = _market_speed()
    bucket_s = policy.sample_s / speed
    since = until - timedelta(seconds=policy.history_s / speed)
    rows = AssetPriceHistory.objects.filter(at__gte=since, at__lte=until).order_by("at")
    buckets: dict[str, dict[int, float]] = {}
    for symbol, at, price in rows.values_list("asset__symbol", "at", "price").iterator():
        bucket = int((at - since).total_seconds() // bucket_s)
        buckets.setdefault(symbol, {})[bucket] = float(price)
    histories = {}
    for symbol, by_bucket in buckets.items():
        first, last = min(by_bucket), max(by_bucket)
        series, price = [], by_bucket[first]
        for bucket in range(first, last + 1):
            price = by_bucket.get(bucket, price)
            series.append(price)
        if len(series) >= policy.min_samples:
            histories[symbol] = np.array(series)
    return histories


def _rate(value: float, rounding) -> Decimal:
    return Decimal(repr(value)).quantize(RATE_STEP, rounding=rounding)


def _estimate(prices: np.ndarray, policy: RecalibrationPolicy, *, downside_only: bool):
    """The covering rate, or None while the history holds fewer than `min_samples` moves of
    the horizon."""
    horizon_s = policy.collateral_horizon_s if downside_only else policy.close_out_horizon_s
    horizon = max(1, round(horizon_s / policy.sample_s))
    if prices.size < horizon + policy.min_samples:
        return None
    return covering_rate(
        prices,
        horizon=horizon,
        confidence=policy.confidence,
        half_life=policy.half_life_s / policy.sample_s,
        volatility_floor=policy.volatility_floor_per_s * policy.sample_s**0.5,
        downside_only=downside_only,
    )


def _backtest(prices: np.ndarray, rate: Decimal, policy: RecalibrationPolicy) -> dict:
    horizon = max(1, round(policy.close_out_horizon_s / policy.sample_s))
    if prices.size <= horizon:
        return {}
    result = coverage_backtest(prices, horizon, float(rate), policy.confidence)
    return {
        "rate": str(rate),
        "observations": result.observations,
        "exceedances": result.exceedances,
        "coverage": result.coverage,
        "expected_exceedance_rate": result.expected_exceedance_rate,
        "kupiec_lr": result.kupiec_lr,
        "kupiec_p_value": result.kupiec_p_value,
        "passes": result.passes(),
    }


def _bracket_proposals(version, histories, policy) -> tuple[dict, list[dict]]:
    """Every instrument's ladder scaled so its first maintenance rate is the estimate (the
    ladder's shape, which grows with size, is kept), and every leverage cap lowered where the
    new rate needs it (IM = 1 / leverage must stay ≥ MM: leverage ≤ 1 / (2 × mmr), Binance's
    own ratio between the two)."""
    changes, backtests = {}, []
    ladders: dict[str, list[Bracket]] = {}
    for bracket in Bracket.objects.filter(version=version).select_related("instrument__underlying"):
        ladders.setdefault(bracket.instrument.symbol, []).append(bracket)
    for symbol, ladder in sorted(ladders.items()):
        ladder.sort(key=lambda b: b.floor)
        prices = histories.get(ladder[0].instrument.underlying.symbol)
        if prices is None:
            continue
        estimate = _estimate(prices, policy, downside_only=False)
        if estimate is None:
            continue
        current = ladder[0].mmr
        proposed = max(RATE_STEP, _rate(estimate.rate, ROUND_CEILING))
        row = {
            "instrument": symbol,
            "estimate": asdict(estimate) | {"binding": estimate.binding},
            "current": _backtest(prices, current, policy),
            "proposed": _backtest(prices, proposed, policy),
        }
        backtests.append(row)
        if not drifted(float(current), float(proposed), policy.drift_threshold):
            continue
        scale = proposed / current
        rows = []
        for bracket in ladder:
            mmr = min(Decimal("0.5"), (bracket.mmr * scale).quantize(RATE_STEP, ROUND_CEILING))
            cap = (1 / (2 * mmr)).to_integral_value(rounding=ROUND_FLOOR)
            leverage = max(Decimal(1), min(bracket.max_leverage, cap))
            rows.append(
                {"floor": str(bracket.floor), "mmr": str(mmr), "max_leverage": str(leverage)}
            )
        changes[symbol] = rows
    return changes, backtests


def _haircut_proposals(version, histories, policy) -> dict:
    """Every collateral asset's tiers scaled so the first tier's haircut (1 − ratio) is the
    estimate of a fall over the collateral horizon; assets whose first ratio is 1 (the settlement
    coins) are left alone."""
    changes = {}
    tiers: dict[str, list[HaircutTier]] = {}
    for tier in HaircutTier.objects.filter(version=version).select_related("asset"):
        tiers.setdefault(tier.asset.symbol, []).append(tier)
    for symbol, rows in sorted(tiers.items()):
        rows.sort(key=lambda t: t.floor)
        prices = histories.get(symbol)
        current = 1 - rows[0].ratio
        if prices is None or current == 0:
            continue
        estimate = _estimate(prices, policy, downside_only=True)
        if estimate is None:
            continue
        proposed = max(RATE_STEP, _rate(estimate.rate, ROUND_CEILING))
        if not drifted(float(current), float(proposed), policy.drift_threshold):
            continue
        scale = proposed / current
        changes[symbol] = [
            {
                "floor": str(tier.floor),
                "ratio": str(max(Decimal(0), 1 - ((1 - tier.ratio) * scale).quantize(RATE_STEP))),
            }
            for tier in rows
        ]
    return changes


def _service_account() -> User:
    user = User.objects.filter(username=SERVICE_USERNAME).first()
    if user is None:
        user = user_ensure(
            username=SERVICE_USERNAME, password=secrets.token_urlsafe(32), role=RISK_OFFICER
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _pending_recalibration(proposer: User) -> bool:
    return Proposal.objects.filter(
        kind=Proposal.Kind.PARAMETER_CHANGE, status=Proposal.Status.PENDING, proposer=proposer
    ).exists()


def recalibration_propose(
    *, now: datetime | None = None, policy: RecalibrationPolicy = POLICY
) -> Proposal | None:
    """Estimate, backtest and, when a rate has drifted, propose. None when nothing drifted, the
    history is too short, or a recalibration proposal is still waiting for a decision."""
    now = now or timezone.now()
    proposer = _service_account()
    if _pending_recalibration(proposer):
        return None
    version: ParameterVersion = parameters_in_force(now)
    histories = index_histories(until=now, policy=policy)
    brackets, backtests = _bracket_proposals(version, histories, policy)
    haircuts = _haircut_proposals(version, histories, policy)
    if not brackets and not haircuts:
        return None
    payload = {"brackets": brackets, "haircuts": haircuts}
    impact = parameter_impact_preview(payload=payload) | {
        "backtest": backtests,
        "policy": asdict(policy),
    }
    reason = (
        f"Recalibration from v{version.number}: rates that cover {policy.confidence:.0%} of the "
        f"{policy.close_out_horizon_s:.0f} s close-out moves drifted more than "
        f"{policy.drift_threshold:.0%} ({', '.join([*brackets, *haircuts])})."
    )
    return proposal_create(
        kind=Proposal.Kind.PARAMETER_CHANGE,
        payload=payload,
        reason=reason,
        proposer=proposer,
        impact=impact,
    )
