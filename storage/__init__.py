"""The label store: dataset features and immutable label sets in HDF5 files, metadata and jobs
in SQL (SQLite in a directory by default, PostgreSQL by URL). Start at `LabelStore.open`."""

from storage.errors import Conflict, IdempotencyConflict, JobLost, NotFound
from storage.records import ClipLabels, DatasetInfo, JobInfo, JobLogLine, LabelSetInfo
from storage.store import LabelStore

__all__ = ["ClipLabels", "Conflict", "DatasetInfo", "IdempotencyConflict", "JobInfo", "JobLost",
           "JobLogLine", "LabelSetInfo", "LabelStore", "NotFound"]
