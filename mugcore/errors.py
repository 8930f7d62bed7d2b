"""Errors that reach a user as one readable line (CLI) or a 4xx JSON body (API)."""


class UserError(Exception):
    """A problem with what the user gave us (a file, a flag, a request), not a bug."""


class DatasetError(UserError):
    """A dataset file that cannot be read or does not pass validation.

    `problems` holds one message per problem, each naming split, key and index.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message)


class UnsafePickleError(DatasetError):
    """A pickle that reaches for something other than numpy arrays and plain containers."""
