"""The app's vocabulary: the choices a stored field takes, named once for every layer. Models
store them, services and selectors compare with them, pages and the API label them; none of
those needs a model class to say "open" or "isolated"."""

from django.db.models import TextChoices

from margin.engine import states


class AccountState(TextChoices):
    """The revaluation job moves an account along these by its margin ratio (with hysteresis)."""

    HEALTHY = states.HEALTHY, "Healthy"
    WARNING = states.WARNING, "Warning"
    MARGIN_CALL = states.MARGIN_CALL, "Margin call"
    LIQUIDATION = states.LIQUIDATION, "Liquidation"
    BANKRUPT = states.BANKRUPT, "Bankrupt"


class MarginMode(TextChoices):
    CROSS = "cross", "Cross"
    ISOLATED = "isolated", "Isolated"


class CaseStatus(TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ProposalStatus(TextChoices):
    PENDING = "pending", "Pending approval"
    EXECUTED = "executed", "Approved and carried out"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class CascadeRunStatus(TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class GuardRejectionReason(TextChoices):
    MOVE = "move", "Moved too far from the last accepted index"
    STALE = "stale", "Older than the maximum age"
    CAPPED = "capped", "Capped: a price to the median of the sources, a vol to its move band"
    NO_QUORUM = "quorum", "No quorum of agreeing sources: the last index held"
