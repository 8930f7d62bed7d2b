"""`LabelStore`: datasets, label sets, label look-ups and jobs over SQL tables and HDF5 files.

A directory is a SQLite store (`store.db` in WAL mode plus the HDF5 files beside it); a
`postgresql+psycopg://` URL plus a files directory is a PostgreSQL store whose HDF5 files live
in that directory (a volume every machine of the deployment mounts). The schema is created or
upgraded by the Alembic migrations in `storage/migrations` whenever a store is opened.

Label sets are immutable: each is one HDF5 file, written and renamed before its SQL row is
committed (see `storage.files`), so a reader that finds the row finds the whole file.

The methods live by concern in mixins: `storage.datasets`, `storage.label_sets`,
`storage.lookups` and `storage.jobs`; this module opens and closes the store.
"""

import fcntl
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mugcore.errors import UserError
from storage import files
from storage.datasets import DATASETS_DIR, DatasetsMixin
from storage.engines import (
    check_directory_files,
    is_url,
    make_dir,
    migrate,
    postgres_url,
    redact,
    schema_revision,
    sqlite_engine,
)
from storage.integrity import IntegrityMixin
from storage.jobs import JobsMixin
from storage.label_sets import LABELS_DIR, ClipIndex, LabelArrays, LabelSetsMixin
from storage.lookups import LookupsMixin
from storage.models import Dataset, LabelSet

log = logging.getLogger(__name__)

SQLITE_FILE = "store.db"
LOCK_FILE = "store.db.open-lock"  # flocked while a process checks or makes the schema
LOCKED_RETRIES = 6
# Dataset files are written by `save_dataset`, which holds no lock we can test; a crashed
# registration's leftovers are removed once they are this old and no row names them.
DATASET_FILE_GRACE_S = 3600.0
LABEL_FILE_GRACE_S = 5.0


@contextmanager
def _first_open_lock(root: Path | None) -> Iterator[None]:
    """Serialise the opens of one SQLite store on this machine while its schema is checked and
    made: a brand-new database switches to WAL and runs its migration, and SQLite answers some
    of what processes racing there do with "database is locked" at once, without waiting out
    its busy timeout (seen under load with several processes opening a new store). PostgreSQL
    stores serialise with an advisory lock in `migrate` instead."""
    try:
        lock = open(root / LOCK_FILE, "a+b") if root is not None else None  # noqa: SIM115
    except OSError:  # a read-only store: nobody can be making its schema
        lock = None
    if lock is None:
        yield
        return
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield  # closing the file lets go of the lock


def _retry_locked(step: Callable[[], None]) -> None:
    """`step()`, tried again a few times while SQLite says "database is locked": another
    machine's process (which the file lock does not reach, e.g. over NFS) may hold it briefly."""
    for attempt in range(LOCKED_RETRIES):
        try:
            step()
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or attempt == LOCKED_RETRIES - 1:
                raise
            log.info("store database locked on open; trying again (%d)", attempt + 1)
            time.sleep(0.05 * 2 ** attempt)


class LabelStore(DatasetsMixin, LabelSetsMixin, LookupsMixin, JobsMixin, IntegrityMixin):
    """The label store. Open with `LabelStore.open(location, files=...)`; use as a context
    manager or call `close()`. Safe to share between threads; each process opens its own."""

    def __init__(self, *, engine: Engine, write_engine: Engine, lookup_engine: Engine,
                 root: Path, location: str) -> None:
        self._engine = engine
        self._write_engine = write_engine
        self._lookup_engine = lookup_engine
        self.root = root
        self.location = location
        self._cache_lock = threading.Lock()
        self._array_cache: OrderedDict[int, LabelArrays] = OrderedDict()
        self._clip_indexes: dict[tuple[int, str], ClipIndex] = {}
        self._verdict_lock = threading.Lock()
        self._verdicts: dict[str, tuple[tuple[int, int], str | None]] = {}

    @classmethod
    def open(cls, location: str | os.PathLike, *, files: str | os.PathLike | None = None,
             create: bool = True) -> "LabelStore":
        """Open (creating or upgrading as needed) the store at `location`: a directory (SQLite)
        or a PostgreSQL URL, which needs `files`, the directory for the HDF5 files. With
        `create=False` (commands that only read) a store that is not there is a UserError
        instead, and nothing is made."""
        if not create and not is_url(location) and not (Path(location) / SQLITE_FILE).is_file():
            raise UserError(f"no label store at {location} (no {SQLITE_FILE} there); check "
                            "--store, or create one with `labelgen run --store`")
        if is_url(location):
            url = postgres_url(str(location))
            if files is None:
                raise UserError(f"store {redact(url)}: a PostgreSQL store needs a files "
                                "directory for its HDF5 files (--files DIR)")
            root = make_dir(Path(files), "files directory")
            engine = create_engine(url, pool_pre_ping=True)
            # Look-ups are single SELECTs: in autocommit they skip BEGIN and the ROLLBACK on
            # return to the pool, two of their four round trips.
            lookup = create_engine(url, pool_pre_ping=True, isolation_level="AUTOCOMMIT")
            store = cls(engine=engine, write_engine=engine, lookup_engine=lookup, root=root,
                        location=redact(url))
        else:
            check_directory_files(location, files)
            root = make_dir(Path(location), "store directory")
            db_url = f"sqlite:///{root / SQLITE_FILE}"
            # The read engine also serves look-ups: its raw cursors are in autocommit already.
            engine = sqlite_engine(db_url, "BEGIN")
            store = cls(engine=engine, write_engine=sqlite_engine(db_url, "BEGIN IMMEDIATE"),
                        lookup_engine=engine, root=root, location=str(root))
        try:
            with _first_open_lock(None if is_url(location) else root):
                if not create and schema_revision(store._engine) is None:
                    raise UserError(f"no label store in database {store.location}; check "
                                    "--store, or create one with `labelgen run --store`")
                _retry_locked(lambda: migrate(store._engine, store._write_engine))
            for sub in (DATASETS_DIR, LABELS_DIR):
                (root / sub).mkdir(exist_ok=True)
            store.clean_stray_files()
        except OperationalError as exc:
            store.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise UserError(f"store {store.location}: cannot open the database ({reason})"
                            ) from exc
        except BaseException:
            store.close()
            raise
        return store

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    def close(self) -> None:
        for engine in {self._engine, self._write_engine, self._lookup_engine}:
            engine.dispose()

    def __enter__(self) -> "LabelStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def clean_stray_files(self, *, grace_s: float = LABEL_FILE_GRACE_S) -> list[Path]:
        """Remove files left behind by crashed writers (never a live writer's); runs on open.
        Returns the removed paths."""

        def label_file_used(path: Path) -> bool:
            rel = path.relative_to(self.root).as_posix()
            with self._read() as s:
                return s.scalar(select(LabelSet.id).where(LabelSet.file == rel)) is not None

        def dataset_file_used(path: Path) -> bool:
            rel = path.relative_to(self.root).as_posix()
            with self._read() as s:
                return s.scalar(select(Dataset.id).where(Dataset.features_file == rel)) is not None

        removed = files.clean_stray_files(self.root / LABELS_DIR, label_file_used,
                                          grace_s=grace_s)
        removed += files.clean_stray_files(self.root / DATASETS_DIR, dataset_file_used,
                                           grace_s=max(grace_s, DATASET_FILE_GRACE_S), suffix="")
        for path in removed:
            log.info("removed stray file %s", path)
        return removed
