from margin.models.accounts import AccountState, MarginAccount
from margin.models.audit import AuditEntry
from margin.models.idempotency import IdempotencyRecord
from margin.models.ledger import Entry, Journal, JournalKind, LedgerAccount, LedgerAccountKind
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
)

__all__ = [
    "AccountState",
    "Asset",
    "AssetPrice",
    "AuditEntry",
    "Bracket",
    "CreditTier",
    "CreditTierTerms",
    "Entry",
    "Fill",
    "HaircutTier",
    "Heartbeat",
    "IdempotencyRecord",
    "Instrument",
    "Journal",
    "JournalKind",
    "LedgerAccount",
    "LedgerAccountKind",
    "MarginAccount",
    "MarginMode",
    "MarkPrice",
    "ParameterVersion",
    "Position",
]
