"""The one exception the engine raises for input a caller can fix."""


class EngineInputError(ValueError):
    """Input the engine refuses, named by the path of the offending field.

    `field` is a dotted path with list indices (`account.positions[0].quantity`) so that the
    command line prints it on one line and the web API maps it to a per-field 400.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, parent: str) -> "EngineInputError":
        """The same error with its path placed under `parent` (a field or a list item)."""
        if not self.field:
            return EngineInputError(parent, self.message)
        joiner = "" if self.field.startswith("[") else "."
        return EngineInputError(f"{parent}{joiner}{self.field}", self.message)
