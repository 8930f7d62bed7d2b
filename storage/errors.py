"""Typed store errors. All are `UserError`s (one line in the CLI, JSON in the API); the API
maps NotFound to 404, Conflict to 409, DamagedStore to 503 and DiskFull to 507."""

import errno
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from mugcore.errors import DiskFull, UserError

# A full disk or an exhausted quota: HDF5 reports them with the C library's message and not
# always with its errno, so both are looked at.
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded",
                    "database or disk is full")  # the last: SQLite's SQLITE_FULL
F = TypeVar("F", bound=Callable[..., Any])


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


def is_disk_full(exc: BaseException) -> bool:
    """Did `exc` (or what caused it) come from a write that found the disk full?"""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, not forever
        if seen is None:
            return False
        if (isinstance(seen, OSError) and seen.errno in _DISK_FULL_ERRNOS) or any(
                word in str(seen) for word in _DISK_FULL_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def refuses_full_disk(what: str) -> Callable[[F], F]:
    """Decorate a store method that writes: a full disk becomes `DiskFull` saying `what` failed
    (instead of an OSError or a database error that reaches the user as a bare 500)."""
    def wrap(method: F) -> F:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except DiskFull as exc:  # said by a lower writer, naming a path of the server's
                raise DiskFull(f"{what}: the store's disk is full; nothing was stored (free "
                               "space, then try again)") from exc
            except UserError:
                raise
            except Exception as exc:
                if is_disk_full(exc):
                    raise DiskFull(f"{what}: the store's disk is full; nothing was stored "
                                   "(free space, then try again)") from exc
                raise
        return call  # type: ignore[return-value]
    return wrap
