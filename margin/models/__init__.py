from margin.models.accounts import AccountState, MarginAccount, MarginScheme
from margin.models.audit import AuditEntry
from margin.models.desk import CascadeRun, Case, CaseNote, Proposal, ScenarioRun, StressRun
from margin.models.funding import FundingPayment, FundingRate
from margin.models.idempotency import IdempotencyRecord
from margin.models.ledger import Entry, Journal, JournalKind, LedgerAccount, LedgerAccountKind
from margin.models.market import (
    AssetPriceHistory,
    GuardRejection,
    MarkPriceHistory,
    QuoteKind,
    SimulatedAsset,
    SourceQuote,
)
from margin.models.notifications import Notification
from margin.models.ops import Heartbeat
from margin.models.positions import Fill, MarginMode, Position
from margin.models.prices import AssetPrice, MarkPrice
from margin.models.reference import (
    Asset,
    Bracket,
    CreditTier,
    CreditTierTerms,
    HaircutTier,
    Instrument,
    ParameterVersion,
    VolatilityFloor,
)
from margin.models.revaluation import (
    AccountEvent,
    Liquidation,
    MarginSnapshot,
    RevaluationShard,
    RevaluationTick,
)

__all__ = [
    "AccountEvent",
    "AccountState",
    "Asset",
    "AssetPrice",
    "AssetPriceHistory",
    "AuditEntry",
    "Bracket",
    "CascadeRun",
    "Case",
    "CaseNote",
    "CreditTier",
    "CreditTierTerms",
    "Entry",
    "Fill",
    "FundingPayment",
    "FundingRate",
    "GuardRejection",
    "HaircutTier",
    "Heartbeat",
    "IdempotencyRecord",
    "Instrument",
    "Journal",
    "JournalKind",
    "LedgerAccount",
    "LedgerAccountKind",
    "Liquidation",
    "MarginAccount",
    "MarginMode",
    "MarginScheme",
    "MarginSnapshot",
    "MarkPrice",
    "MarkPriceHistory",
    "Notification",
    "ParameterVersion",
    "Position",
    "Proposal",
    "QuoteKind",
    "RevaluationShard",
    "RevaluationTick",
    "ScenarioRun",
    "SimulatedAsset",
    "SourceQuote",
    "StressRun",
    "VolatilityFloor",
]
