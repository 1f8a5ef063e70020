"""The one exception for errors a user can fix; views, API and commands each turn it into a
form error, an htmx fragment, a 400 or a message, never a 500."""


class ApplicationError(Exception):
    """A refusal the user can act on: `message` for humans, `extra` maps a field to its problem."""

    def __init__(self, message: str, extra: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
