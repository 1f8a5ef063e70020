"""One margin account in memory: what every service plans on and every preview quotes."""

from dataclasses import dataclass, field

from margin.engine.reference import AccountQuote


@dataclass(frozen=True)
class Receipt:
    """The result of a write, replayed as is for the same idempotency key."""

    operation: str
    margin_account_id: int
    journal_id: int | None = None
    fill_id: int | None = None
    position_id: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


@dataclass(frozen=True)
class Preview:
    """A dry run: the engine's figures before and after, the fingerprint of the state they were
    computed on (pass it back as `expected_fingerprint`), and the refusal if the write would be
    refused."""

    operation: str
    before: AccountQuote
    after: AccountQuote | None
    fingerprint: str
    refusal: str | None = None
    details: dict[str, str] = field(default_factory=dict)
