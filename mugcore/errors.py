"""Errors that reach a user as one readable line (CLI) or a 4xx JSON body (API)."""


def shorten(value: object, limit: int = 60) -> str:
    """`repr(value)` for a message, cut to about `limit` characters: whatever a client sent (a
    100 KB clip id, a 5000-digit integer), the answer need not repeat it."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's 4300-digit str limit
        return "a very large integer"
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text)} characters)"


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


class DiskFull(UserError):
    """A write found (or would find) the disk or the quota full; whatever was being written
    has been removed by its writer. The API answers 507; a job fails with the message."""
