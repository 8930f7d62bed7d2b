"""`LabelStore`: datasets, label sets, label look-ups and jobs over SQL tables and HDF5 files.

A directory is a SQLite store (`store.db` in WAL mode plus the HDF5 files beside it); a
`postgresql+psycopg://` URL plus a files directory is a PostgreSQL store whose HDF5 files live
in that directory (a volume every machine of the deployment mounts). The schema is created or
upgraded by the Alembic migrations in `storage/migrations` whenever a store is opened.

Label sets are immutable: each is one HDF5 file, written and renamed before its SQL row is
committed (see `storage.files`), so a reader that finds the row finds the whole file.
"""

import functools
import logging
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, delete, event, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mugcore.data.hashing import dataset_hash
from mugcore.data.io import load_dataset, save_dataset
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.data.validate import check_dataset
from mugcore.errors import UserError
from storage import files
from storage.errors import Conflict, NotFound
from storage.jobs import JobsMixin
from storage.models import ACTIVE_JOB_STATUSES, Clip, Dataset, Job, LabelSet
from storage.records import ClipLabels, DatasetInfo, LabelSetInfo, plain_json, utc, utcnow

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_FILE = "store.db"
DATASETS_DIR = "datasets"
LABELS_DIR = "labels"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Dataset files are written by `save_dataset`, which holds no lock we can test; a crashed
# registration's leftovers are removed once they are this old and no row names them.
DATASET_FILE_GRACE_S = 3600.0
LABEL_FILE_GRACE_S = 5.0
_ARRAY_CACHE_SETS = 16
# Any 64-bit key, the same in every process: serialises first opens on PostgreSQL.
_PG_MIGRATION_LOCK = 0x6D75675F73746F72

LabelArrays = dict[str, np.ndarray]


def is_url(location: str | os.PathLike) -> bool:
    return "://" in str(location)


@dataclass(frozen=True)
class _ClipIndex:
    """A dataset's clips in position order (the order of label-set files)."""

    clip_id: np.ndarray
    split: np.ndarray
    multimodal: np.ndarray
    position_of: dict[str, int]


class LabelStore(JobsMixin):
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
        self._clip_indexes: dict[tuple[int, str], _ClipIndex] = {}

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, location: str | os.PathLike, *, files: str | os.PathLike | None = None
             ) -> "LabelStore":
        """Open (creating or upgrading as needed) the store at `location`: a directory (SQLite)
        or a PostgreSQL URL, which needs `files`, the directory for the HDF5 files."""
        if is_url(location):
            url = _postgres_url(str(location))
            if files is None:
                raise UserError(f"store {_redact(url)}: a PostgreSQL store needs a files "
                                "directory for its HDF5 files (--files DIR)")
            root = _make_dir(Path(files), "files directory")
            engine = create_engine(url, pool_pre_ping=True)
            # Look-ups are single SELECTs: in autocommit they skip BEGIN and the ROLLBACK on
            # return to the pool, two of their four round trips.
            lookup = create_engine(url, pool_pre_ping=True, isolation_level="AUTOCOMMIT")
            store = cls(engine=engine, write_engine=engine, lookup_engine=lookup, root=root,
                        location=_redact(url))
        else:
            if files is not None and Path(files).resolve() != Path(location).resolve():
                raise UserError(f"--files is only for PostgreSQL stores; the directory store "
                                f"{location} keeps its files inside it")
            root = _make_dir(Path(location), "store directory")
            db_url = f"sqlite:///{root / SQLITE_FILE}"
            # The read engine also serves look-ups: its raw cursors are in autocommit already.
            engine = _sqlite_engine(db_url, "BEGIN")
            store = cls(engine=engine, write_engine=_sqlite_engine(db_url, "BEGIN IMMEDIATE"),
                        lookup_engine=engine, root=root, location=str(root))
        try:
            store._migrate()
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

    def _migrate(self) -> None:
        config = _alembic_config()
        with self._engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == _schema_head():
                return
        # Serialise concurrent first opens: BEGIN IMMEDIATE on SQLite, an advisory lock on
        # PostgreSQL. The loser then finds the schema at head and has nothing to do.
        with self._write_engine.begin() as conn:
            if self.backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _PG_MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

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

    # ------------------------------------------------------------------ datasets

    def register_dataset(self, name: str, ds: MMSADataset, *, source_format: str) -> DatasetInfo:
        """Add `ds` under `name`, copying its features into the store. The same name with the
        same content hash returns the existing dataset; with other content it is a Conflict."""
        if not NAME_RE.match(name):
            raise UserError(f"dataset name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
        content_hash = dataset_hash(ds)
        existing = self._dataset_by_name(name)
        if existing is not None:
            return self._reuse(existing, content_hash)
        check_dataset(ds, f"dataset {name!r}")
        clip_rows = _clip_rows(ds)
        rel = f"{DATASETS_DIR}/{name}-{content_hash[:12]}.h5"
        save_dataset(ds, self.root / rel)
        row = Dataset(name=name, source_format=source_format, content_hash=content_hash,
                      label_bound=ds.label_bound, dims=_dims(ds),
                      split_sizes={s: ds.size(s) for s in SPLITS if s in ds.splits},
                      has_truth=ds.has_truth, attrs=plain_json(ds.attrs), features_file=rel,
                      created_at=utcnow())
        try:
            with self._write() as s:
                s.add(row)
                s.flush()
                for clip in clip_rows:
                    clip["dataset_id"] = row.id
                s.execute(Clip.__table__.insert(), clip_rows)
        except IntegrityError:
            # Someone registered the same name meanwhile. Same content: the file we wrote is
            # theirs too (same path). Other content: ours is a different path, so drop it.
            existing = self._dataset_by_name(name)
            if existing is None:
                raise
            if existing.content_hash != content_hash:
                (self.root / rel).unlink(missing_ok=True)
            return self._reuse(existing, content_hash)
        except BaseException:
            (self.root / rel).unlink(missing_ok=True)
            raise
        log.info("registered dataset %s (%d clips, hash %s)", name, len(clip_rows),
                 content_hash[:12])
        return self.get_dataset(row.id)

    def _reuse(self, existing: Dataset, content_hash: str) -> DatasetInfo:
        if existing.content_hash != content_hash:
            raise Conflict(
                f"dataset {existing.name!r} already exists with other content (stored hash "
                f"{existing.content_hash[:12]}, given {content_hash[:12]}); pick another dataset "
                f"name or delete it first (labelgen store rm {existing.name})")
        log.info("dataset %s is already in the store (same content), reusing it", existing.name)
        return self.get_dataset(existing.id)

    def _dataset_by_name(self, name: str) -> Dataset | None:
        with self._read() as s:
            return s.scalar(select(Dataset).where(Dataset.name == name))

    def _dataset_row(self, s: Session, dataset: str | int) -> Dataset:
        if isinstance(dataset, int) or (isinstance(dataset, str) and dataset.isdigit()):
            row = s.get(Dataset, int(dataset))
            if row is None and isinstance(dataset, str):
                row = s.scalar(select(Dataset).where(Dataset.name == dataset))
        else:
            row = s.scalar(select(Dataset).where(Dataset.name == dataset))
        if row is None:
            raise NotFound(f"no dataset {dataset!r} in store {self.location}")
        return row

    def get_dataset(self, dataset: str | int) -> DatasetInfo:
        """A dataset by name or id (NotFound if absent)."""
        with self._read() as s:
            return self._dataset_info(s, self._dataset_row(s, dataset))

    def list_datasets(self) -> list[DatasetInfo]:
        with self._read() as s:
            rows = s.scalars(select(Dataset).order_by(Dataset.id)).all()
            return [self._dataset_info(s, r) for r in rows]

    def _dataset_info(self, s: Session, row: Dataset) -> DatasetInfo:
        return DatasetInfo(id=row.id, name=row.name, source_format=row.source_format,
                           content_hash=row.content_hash, label_bound=row.label_bound,
                           dims=row.dims, split_sizes=row.split_sizes, has_truth=row.has_truth,
                           attrs=row.attrs, features_file=row.features_file,
                           created_at=utc(row.created_at),
                           n_clips=sum(row.split_sizes.values()))

    def features_path(self, dataset: str | int) -> Path:
        """The HDF5 feature file of a dataset (MMSA keys, readable by mugcore.data.io)."""
        return self.root / self.get_dataset(dataset).features_file

    def load_features(self, dataset: str | int) -> MMSADataset:
        return load_dataset(self.features_path(dataset), validate=False)

    def delete_dataset(self, dataset: str | int) -> list[int]:
        """Delete a dataset, its clips and label sets (files too); refuses (Conflict) while a
        queued or running job uses it. Returns the ids of the deleted label sets."""
        with self._write() as s:
            row = self._dataset_row(s, dataset)
            active = s.scalars(select(Job.id).where(Job.dataset_id == row.id,
                                                    Job.status.in_(ACTIVE_JOB_STATUSES))).all()
            if active:
                raise Conflict(f"dataset {row.name!r} is in use by job(s) "
                               f"{', '.join(map(str, active))}; cancel them or wait")
            label_sets = s.execute(select(LabelSet.id, LabelSet.file)
                                   .where(LabelSet.dataset_id == row.id)).all()
            ids = [ls.id for ls in label_sets]
            s.execute(update(Job).where(Job.label_set_id.in_(ids)).values(label_set_id=None))
            s.execute(update(Job).where(Job.dataset_id == row.id).values(dataset_id=None))
            s.execute(delete(LabelSet).where(LabelSet.dataset_id == row.id))
            s.execute(delete(Clip).where(Clip.dataset_id == row.id))
            features_file, name = row.features_file, row.name
            s.delete(row)
        # The rows are gone, so nobody reaches these files any more; a crash before the unlink
        # leaves strays that the next open removes.
        for rel in [ls.file for ls in label_sets] + [features_file]:
            (self.root / rel).unlink(missing_ok=True)
        self._forget(ids)
        log.info("deleted dataset %s and %d label set(s)", name, len(ids))
        return ids

    # ------------------------------------------------------------------ label sets

    def _clip_index(self, dataset: DatasetInfo) -> _ClipIndex:
        key = (dataset.id, dataset.content_hash)
        index = self._clip_indexes.get(key)
        if index is None:
            with self._read() as s:
                rows = s.execute(select(Clip.clip_id, Clip.split, Clip.multimodal)
                                 .where(Clip.dataset_id == dataset.id)
                                 .order_by(Clip.position)).all()
            ids = np.array([r.clip_id for r in rows], dtype=str)
            index = _ClipIndex(clip_id=ids, split=np.array([r.split for r in rows], dtype=str),
                               multimodal=np.array([r.multimodal for r in rows]),
                               position_of={c: i for i, c in enumerate(ids.tolist())})
            self._clip_indexes[key] = index
        return index

    def publish_label_set(self, dataset: str | int, labels: Mapping[str, Any], *, method: str,
                          options: Mapping[str, Any], seed: int | None,
                          provenance: Mapping[str, Any] | None = None,
                          quality: Mapping[str, Any] | None = None) -> LabelSetInfo:
        """Publish uni-labels for every clip of `dataset` as a new immutable label set.

        `labels` holds arrays `clip_id`, `split`, `multimodal`, `text`, `audio`, `vision` over
        all clips in any order. Atomic: readers see the whole label set or none of it."""
        info = self.get_dataset(dataset)
        provenance = plain_json(dict(provenance or {}))
        given_hash = provenance.get("dataset_hash")
        if given_hash and given_hash != info.content_hash:
            raise Conflict(f"these labels were made from dataset content {given_hash[:12]}, "
                           f"but dataset {info.name!r} holds {info.content_hash[:12]}")
        arrays = _align_labels(labels, self._clip_index(info), info)
        options, quality = plain_json(dict(options)), plain_json(dict(quality or {}))
        versions = {**plain_json(provenance.get("versions", {})), **_store_versions()}
        timings = plain_json(provenance.get("timings", {}))
        created = utcnow()
        meta = {"dataset": info.name, "dataset_hash": info.content_hash, "method": method,
                "options": options, "seed": seed, "versions": versions, "timings": timings,
                "quality": quality, "provenance": provenance, "created_at": created.isoformat()}
        published = files.write_locked(self.root / LABELS_DIR,
                                       files.encode_label_set(arrays, meta))
        try:
            row = LabelSet(dataset_id=info.id, method=method, options=options, seed=seed,
                           versions=versions, timings=timings, quality=quality,
                           provenance=provenance,
                           file=published.path.relative_to(self.root).as_posix(),
                           file_sha256=published.sha256, n_clips=len(arrays["clip_id"]),
                           created_at=created)
            with self._write() as s:
                s.add(row)
        except BaseException:
            published.discard()
            raise
        published.release()
        self._remember(row.id, arrays)
        log.info("published label set %d for dataset %s (%s)", row.id, info.name, method)
        return self._label_set_info(row, info.name)

    def list_label_sets(self, dataset: str | int | None = None) -> list[LabelSetInfo]:
        with self._read() as s:
            stmt = select(LabelSet, Dataset.name).join(Dataset).order_by(LabelSet.id)
            if dataset is not None:
                stmt = stmt.where(LabelSet.dataset_id == self._dataset_row(s, dataset).id)
            return [self._label_set_info(ls, name) for ls, name in s.execute(stmt).all()]

    def get_label_set(self, label_set: int | str = "latest", *,
                      dataset: str | int | None = None) -> LabelSetInfo:
        """A label set by id, or the newest one ("latest") of `dataset` (required then)."""
        with self._read() as s:
            row, name = self._label_set_row(s, label_set, dataset)
            return self._label_set_info(row, name)

    def _label_set_row(self, s: Session, label_set: int | str,
                       dataset: str | int | None) -> tuple[LabelSet, str]:
        ds_row = None if dataset is None else self._dataset_row(s, dataset)
        if label_set == "latest":
            if ds_row is None:
                raise UserError("label set 'latest' needs a dataset (--dataset NAME)")
            row = s.scalar(select(LabelSet).where(LabelSet.dataset_id == ds_row.id)
                           .order_by(LabelSet.id.desc()).limit(1))
            if row is None:
                raise NotFound(f"dataset {ds_row.name!r} has no label sets yet")
            return row, ds_row.name
        row = s.get(LabelSet, _label_set_id(label_set))
        if row is None:
            raise NotFound(f"no label set {label_set} in store {self.location}")
        if ds_row is not None and row.dataset_id != ds_row.id:
            raise UserError(f"label set {row.id} belongs to another dataset than {ds_row.name!r}")
        return row, s.get_one(Dataset, row.dataset_id).name

    @staticmethod
    def _label_set_info(row: LabelSet, dataset_name: str) -> LabelSetInfo:
        return LabelSetInfo(id=row.id, dataset_id=row.dataset_id, dataset=dataset_name,
                            method=row.method, options=row.options, seed=row.seed,
                            versions=row.versions, timings=row.timings, quality=row.quality,
                            provenance=row.provenance, file=row.file,
                            file_sha256=row.file_sha256, n_clips=row.n_clips,
                            created_at=utc(row.created_at))

    def delete_label_set(self, label_set: int | str) -> None:
        """Delete one label set and its file; refuses (Conflict) while an active job uses it."""
        with self._write() as s:
            row = s.get(LabelSet, _label_set_id(label_set))
            if row is None:
                raise NotFound(f"no label set {label_set} in store {self.location}")
            active = s.scalars(select(Job.id).where(Job.label_set_id == row.id,
                                                    Job.status.in_(ACTIVE_JOB_STATUSES))).all()
            if active:
                raise Conflict(f"label set {row.id} is in use by job(s) "
                               f"{', '.join(map(str, active))}")
            s.execute(update(Job).where(Job.label_set_id == row.id).values(label_set_id=None))
            s.delete(row)
            rel = row.file
        (self.root / rel).unlink(missing_ok=True)
        self._forget([row.id])

    def label_file_path(self, label_set: LabelSetInfo) -> Path:
        return self.root / label_set.file

    def _cached_arrays(self, label_set_id: int) -> LabelArrays | None:
        with self._cache_lock:
            arrays = self._array_cache.get(label_set_id)
            if arrays is not None:
                self._array_cache.move_to_end(label_set_id)
            return arrays

    def _arrays(self, label_set_id: int, rel_file: str) -> LabelArrays:
        """A label set's arrays, read once per process: the files never change, and ids are
        never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL)."""
        arrays = self._cached_arrays(label_set_id)
        if arrays is not None:
            return arrays
        arrays = files.read_label_file(self.root / rel_file)
        self._remember(label_set_id, arrays)
        return arrays

    def _remember(self, label_set_id: int, arrays: LabelArrays) -> None:
        # Cached arrays are shared with callers: make them read-only so nobody edits the cache.
        for value in arrays.values():
            value.setflags(write=False)
        with self._cache_lock:
            self._array_cache[label_set_id] = arrays
            while len(self._array_cache) > _ARRAY_CACHE_SETS:
                self._array_cache.popitem(last=False)

    def _forget(self, ids: list[int]) -> None:
        with self._cache_lock:
            for i in ids:
                self._array_cache.pop(i, None)

    def read_labels(self, label_set: int | str = "latest", *, dataset: str | int | None = None,
                    split: str | None = None) -> LabelArrays:
        """All labels of a label set (or one split of it) in one call: read-only arrays
        `clip_id`, `split`, `multimodal`, `text`, `audio`, `vision`, aligned by clip."""
        if split is not None and split not in SPLITS:
            raise UserError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
        arrays = self._arrays(*self._locate(label_set, dataset))
        if split is None:
            return dict(arrays)
        # Files are in split order, so a split is one contiguous slice (a view, no copy).
        where = np.flatnonzero(arrays["split"] == split)
        part = slice(int(where[0]), int(where[-1]) + 1) if len(where) else slice(0, 0)
        return {key: value[part] for key, value in arrays.items()}

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one read-only statement on a pooled DBAPI connection. The look-up path skips
        SQLAlchemy's statement building and result objects: they cost far more than SQLite's
        or PostgreSQL's own work for a one-row query. `sql` uses '?' placeholders."""
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        conn = self._lookup_engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            conn.close()  # back to the pool

    def _locate(self, label_set: int | str, dataset: str | int | None) -> tuple[int, str]:
        """(id, file) of a label set through the fast path; `get_label_set` explains a miss."""
        sql, params = _LOCATE_SQL, []
        if label_set != "latest":
            sql += " AND l.id = ?"
            params.append(_label_set_id(label_set))
        if dataset is not None:
            sql += _IN_DATASET_SQL
            params += [str(dataset), _as_id(dataset)]
        if label_set == "latest" and dataset is not None:
            rows = self._query(sql + " ORDER BY l.id DESC LIMIT 1", tuple(params))
        elif label_set != "latest":
            rows = self._query(sql, tuple(params))
        else:
            rows = []
        if rows:
            return rows[0]
        info = self.get_label_set(label_set, dataset=dataset)  # raises NotFound / UserError
        return info.id, info.file

    def lookup(self, clip_id: str, *, dataset: str | int | None = None,
               label_set: int | str = "latest") -> ClipLabels:
        """One clip's labels. Without `dataset` the clip id must be unique in the store."""
        if dataset is None:
            rows = self._query(_LOOKUP_SQL, (clip_id,))
        else:
            rows = self._query(_LOOKUP_SQL + _IN_DATASET_SQL,
                               (clip_id, str(dataset), _as_id(dataset)))
        if not rows:
            where = "" if dataset is None else f" in dataset {dataset!r}"
            raise NotFound(f"unknown clip id {clip_id!r}{where}")
        if len(rows) > 1:
            names = ", ".join(sorted(r[7] for r in rows))
            raise UserError(f"clip id {clip_id!r} is in several datasets ({names}); "
                            "name one (--dataset)")
        split, row, i, t_text, t_audio, t_vision, dataset_id, name, latest = rows[0]
        if label_set == "latest":
            if latest is None:
                raise NotFound(f"dataset {name!r} has no label sets yet")
            ls_id = latest
        else:
            ls_id = _label_set_id(label_set)
        arrays = self._cached_arrays(ls_id) if ls_id == latest else None
        if arrays is None:
            found = self._query(_LABEL_SET_SQL, (ls_id,))
            if not found:
                raise NotFound(f"no label set {ls_id} in store {self.location}")
            if found[0][0] != dataset_id:
                raise UserError(f"label set {ls_id} belongs to another dataset than {name!r}")
            arrays = self._arrays(ls_id, found[0][1])
        if arrays["clip_id"][i] != clip_id:
            raise RuntimeError(f"label set {ls_id} file does not match the clip table at {i}")
        truths = (t_text, t_audio, t_vision)
        truth = None if any(t is None for t in truths) else dict(zip(MODALITIES, truths,
                                                                       strict=True))
        return ClipLabels(clip_id=clip_id, dataset=name, split=split, row=row,
                          multimodal=float(arrays["multimodal"][i]),
                          text=float(arrays["text"][i]), audio=float(arrays["audio"][i]),
                          vision=float(arrays["vision"][i]), label_set=ls_id, truth=truth)


_LOOKUP_SQL = """
SELECT c.split, c.row, c.position, c.truth_text, c.truth_audio, c.truth_vision, d.id, d.name,
       (SELECT max(l.id) FROM label_sets l WHERE l.dataset_id = d.id)
FROM clips c JOIN datasets d ON d.id = c.dataset_id
WHERE c.clip_id = ?"""
_IN_DATASET_SQL = " AND (d.name = ? OR d.id = ?)"
_LOCATE_SQL = """
SELECT l.id, l.file FROM label_sets l JOIN datasets d ON d.id = l.dataset_id WHERE 1 = 1"""
_LABEL_SET_SQL = "SELECT dataset_id, file FROM label_sets WHERE id = ?"


# ---------------------------------------------------------------------- helpers


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache
def _schema_head() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _make_dir(path: Path, what: str) -> Path:
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot create it ({exc.strerror})") from exc
    return path.resolve()


def _postgres_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    raise UserError(f"store URL {_redact(url)}: unsupported scheme {scheme!r} "
                    "(use a directory or postgresql+psycopg://USER@HOST:PORT/DB)")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _sqlite_engine(url: str, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so that BEGIN is ours: deferred for
        # readers, IMMEDIATE for writers (a writer then waits for the lock up front instead of
        # failing with "database is locked" when it upgrades a read lock).
        dbapi_conn.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=60000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _as_id(dataset: str | int) -> int:
    """As everywhere in the store, a dataset given as a string of digits may be an id or a name;
    -1 matches no id."""
    return int(dataset) if isinstance(dataset, int) or dataset.isdigit() else -1


def _label_set_id(label_set: int | str) -> int:
    try:
        return int(label_set)
    except (TypeError, ValueError):
        raise UserError(f"label set {label_set!r}: expected an id or 'latest'") from None


def _store_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("mug-unilabels", "numpy", "h5py", "sqlalchemy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _dims(ds: MMSADataset) -> dict[str, Any]:
    """Per-clip shapes of the feature arrays, e.g. text [Lt, 768], text_bert [3, Lt]."""
    first = ds.splits[next(s for s in SPLITS if s in ds.splits)]
    dims: dict[str, Any] = {key: [int(n) for n in np.shape(first[key])[1:]]
                            for key in ("text", "text_bert", "audio", "vision")}
    dims["aligned"] = "audio_lengths" not in first
    return dims


def _clip_rows(ds: MMSADataset) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for split in SPLITS:
        if split not in ds.splits:
            continue
        data = ds.splits[split]
        labels = np.asarray(data["regression_labels"], dtype=float).reshape(-1)
        truth = {m: np.asarray(data[k], dtype=float).reshape(-1) if k in data else None
                 for m, k in TRUTH_KEYS.items()}
        for row, (clip_id, label) in enumerate(zip(data["id"], labels, strict=True)):
            rows.append({"clip_id": _text(clip_id), "split": split, "row": row,
                         "position": len(rows), "multimodal": float(label),
                         **{f"truth_{m}": None if t is None else float(t[row])
                            for m, t in truth.items()}})
    return rows


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _align_labels(labels: Mapping[str, Any], index: _ClipIndex, info: DatasetInfo) -> LabelArrays:
    """Check `labels` against the dataset's clips and put them in position order."""
    missing = [k for k in files.LABEL_KEYS if k not in labels]
    if missing:
        raise UserError(f"labels: missing key(s) {', '.join(missing)}")
    ids = np.array([_text(c) for c in labels["clip_id"]], dtype=str)
    n = len(index.clip_id)
    for key in files.LABEL_KEYS:
        if len(labels[key]) != len(ids):
            raise UserError(f"labels/{key}: {len(labels[key])} entries, labels/clip_id has "
                            f"{len(ids)}")
    if len(ids) != n:
        raise UserError(f"labels: {len(ids)} clips, dataset {info.name!r} has {n}")
    order = np.fromiter((index.position_of.get(c, -1) for c in ids.tolist()), dtype=np.int64,
                        count=len(ids))
    if (order < 0).any():
        bad = ids[order < 0][:5].tolist()
        raise UserError(f"labels/clip_id: {int((order < 0).sum())} id(s) not in dataset "
                        f"{info.name!r}, e.g. {bad}")
    if len(np.unique(order)) != n:
        raise UserError("labels/clip_id: some clip ids appear more than once")
    out: LabelArrays = {"clip_id": index.clip_id, "split": index.split}
    splits = np.empty(n, dtype=index.split.dtype)
    splits[order] = np.array([_text(s) for s in labels["split"]], dtype=str)
    wrong = np.flatnonzero(splits != index.split)
    if len(wrong):
        i = int(wrong[0])
        raise UserError(f"labels/split: clip {index.clip_id[i]!r} is in split "
                        f"{index.split[i]!r}, labels say {splits[i]!r}")
    bound = info.label_bound
    for key in files.VALUE_KEYS:
        values = np.asarray(labels[key])
        if values.dtype.kind not in "fiu":
            raise UserError(f"labels/{key}: expected numbers, got dtype {values.dtype}")
        if values.dtype.kind != "f":
            values = values.astype(np.float64)
        placed = np.empty(n, dtype=values.dtype)
        placed[order] = values
        bad = np.flatnonzero(~np.isfinite(placed) | (np.abs(placed) > bound + 1e-6))
        if len(bad):
            i = int(bad[0])
            raise UserError(f"labels/{key}: {len(bad)} value(s) not finite or outside "
                            f"[-{bound:g}, {bound:g}], e.g. clip {index.clip_id[i]!r}: {placed[i]}")
        out[key] = placed
    off = np.flatnonzero(~np.isclose(out["multimodal"], index.multimodal, atol=1e-4))
    if len(off):
        i = int(off[0])
        raise UserError(f"labels/multimodal: {len(off)} value(s) differ from the dataset's "
                        f"labels, e.g. clip {index.clip_id[i]!r}: {out['multimodal'][i]} vs "
                        f"{index.multimodal[i]}")
    return out
