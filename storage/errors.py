"""Typed store errors. All are `UserError`s (one line in the CLI, JSON in the API); the API
maps NotFound to 404, Conflict to 409 and DamagedStore to 503."""

from mugcore.errors import UserError


class NotFound(UserError):
    """No dataset, clip, label set or job by that name or id."""


class Conflict(UserError):
    """The request clashes with the store's state (a name taken, an object in use, ...)."""


class IdempotencyConflict(Conflict):
    """An idempotency key reused with other options than the job it first created."""


class JobLost(Conflict):
    """A worker reports on a job it no longer holds (requeued, failed or cancelled meanwhile)."""


class DamagedStore(UserError):
    """A file of the store is not what its row records (changed, truncated, unreadable): not
    the request's fault, but a plain message naming the file, never a traceback."""
