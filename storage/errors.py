"""Typed store errors. All are `UserError`s; the API maps NotFound to 404 and Conflict to 409."""

from mugcore.errors import UserError


class NotFound(UserError):
    """No dataset, clip, label set or job by that name or id."""


class Conflict(UserError):
    """The request clashes with the store's state (a name taken, an object in use, ...)."""


class IdempotencyConflict(Conflict):
    """An idempotency key reused with other options than the job it first created."""


class JobLost(Conflict):
    """A worker reports on a job it no longer holds (requeued, failed or cancelled meanwhile)."""
