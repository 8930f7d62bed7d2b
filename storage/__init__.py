"""The label store: dataset features and immutable label sets in HDF5 files, metadata and jobs
in SQL (SQLite in a directory by default, PostgreSQL by URL). Start at `LabelStore.open`."""

import logging
from typing import TYPE_CHECKING, Any

from storage.errors import Conflict, IdempotencyConflict, JobLost, NotFound
from storage.records import ClipLabels, DatasetInfo, JobInfo, JobLogLine, LabelSetInfo

if TYPE_CHECKING:
    from storage.store import LabelStore

# Alembic logs its plugins and every migration context at INFO: noise on each store command.
# Quieted here, before any module of ours imports it, unless someone set its level on purpose.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)

__all__ = ["ClipLabels", "Conflict", "DatasetInfo", "IdempotencyConflict", "JobInfo", "JobLost",
           "JobLogLine", "LabelSetInfo", "LabelStore", "NotFound"]


def __getattr__(name: str) -> Any:
    # SQLAlchemy and Alembic load when a store is first used, not on `import storage` (which
    # every CLI does to build its --help).
    if name == "LabelStore":
        from storage.store import LabelStore

        return LabelStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
