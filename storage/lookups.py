"""Reading labels: a whole label set (or one split) and one clip's labels, through a fast path
of raw single-row queries and a per-process cache of label-set arrays (the files never change)."""

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine

from mugcore.data.schema import MODALITIES, SPLITS
from mugcore.errors import UserError, shorten
from mugcore.ids import plain_int
from storage import files
from storage.errors import DamagedStore, NotFound
from storage.label_sets import LabelArrays, parse_label_set_id
from storage.records import ClipLabels, LabelSetInfo, plain_float
from storage.uncertainty import clip_uncertainty

_ARRAY_CACHE_SETS = 16


class LookupsMixin:
    """Read methods of `LabelStore` (which provides the engines, root and label-set look-up)."""

    root: Path
    location: str
    backend: str
    _lookup_engine: Engine
    _cache_lock: threading.Lock
    _array_cache: OrderedDict[int, LabelArrays]

    if TYPE_CHECKING:
        def get_label_set(self, label_set: int | str = "latest", *,
                          dataset: str | int | None = None) -> LabelSetInfo: ...
        def get_dataset(self, dataset: str | int) -> Any: ...
        def verified_label_file(self, label_set_id: int, rel: str, sha256: str) -> Path: ...

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
        recorded = self._query("SELECT file_sha256 FROM label_sets WHERE id = ?",
                               (label_set_id,))
        if recorded:  # a row gone meanwhile: read_label_file says the file is gone
            self.verified_label_file(label_set_id, rel_file, recorded[0][0])
        try:
            arrays = files.read_label_file(self.root / rel_file)
        except OSError as exc:  # its sha256 matched: written wrong, not changed since
            raise DamagedStore(f"label set {label_set_id}: its file {rel_file} cannot be "
                               f"read ({exc})") from None
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
        `clip_id`, `split`, `multimodal`, `text`, `audio`, `vision`, aligned by clip, and the
        nine uncertainty arrays (`text_std`, ..., `vision_upper`) where the set has them."""
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
            params.append(parse_label_set_id(label_set))
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
               label_set: int | str = "latest", dataset_option: str = "--dataset",
               ) -> ClipLabels:
        """One clip's labels. Without `dataset` the clip id must be unique in the store.
        `dataset_option` is how the caller's interface names a dataset (a CLI flag, an API
        query parameter), quoted when the clip id is ambiguous."""
        if dataset is None:
            rows = self._query(_LOOKUP_SQL, (clip_id,))
        else:
            rows = self._query(_LOOKUP_SQL + _IN_DATASET_SQL,
                               (clip_id, str(dataset), _as_id(dataset)))
        if not rows:
            if dataset is not None:
                self._check_dataset(dataset)  # an unknown dataset, not an unknown clip
            where = "" if dataset is None else f" in dataset {dataset!r}"
            raise NotFound(f"unknown clip id {shorten(clip_id)}{where}")
        if len(rows) > 1:
            names = ", ".join(sorted(r[7] for r in rows))
            raise UserError(f"clip id {clip_id!r} is in several datasets ({names}); "
                            f"name one ({dataset_option})")
        split, row, i, t_text, t_audio, t_vision, dataset_id, name, latest = rows[0]
        if label_set == "latest":
            if latest is None:
                raise NotFound(f"dataset {name!r} has no label sets yet")
            ls_id = latest
        else:
            ls_id = parse_label_set_id(label_set)
        arrays = self._cached_arrays(ls_id) if ls_id == latest else None
        if arrays is None:
            found = self._query(_LABEL_SET_SQL, (ls_id,))
            if not found:
                raise NotFound(f"no label set {ls_id} in the store")
            if found[0][0] != dataset_id:
                raise UserError(f"label set {ls_id} belongs to another dataset than {name!r}")
            arrays = self._arrays(ls_id, found[0][1])
        if arrays["clip_id"][i] != clip_id:
            raise RuntimeError(f"label set {ls_id} file does not match the clip table at {i}")
        truths = (t_text, t_audio, t_vision)
        truth = None if any(t is None for t in truths) else dict(zip(MODALITIES, truths,
                                                                       strict=True))
        return ClipLabels(clip_id=clip_id, dataset=name, split=split, row=row,
                          multimodal=plain_float(arrays["multimodal"][i]),
                          text=plain_float(arrays["text"][i]),
                          audio=plain_float(arrays["audio"][i]),
                          vision=plain_float(arrays["vision"][i]), label_set=ls_id, truth=truth,
                          uncertainty=clip_uncertainty(arrays, i))

    def _check_dataset(self, dataset: str | int) -> None:
        try:
            self.get_dataset(dataset)
        except NotFound:
            raise NotFound(f"unknown dataset {shorten(dataset)}: no dataset of that name or id "
                           "in the store") from None


_LOOKUP_SQL = """
SELECT c.split, c.row, c.position, c.truth_text, c.truth_audio, c.truth_vision, d.id, d.name,
       (SELECT max(l.id) FROM label_sets l WHERE l.dataset_id = d.id)
FROM clips c JOIN datasets d ON d.id = c.dataset_id
WHERE c.clip_id = ?"""
_IN_DATASET_SQL = " AND (d.name = ? OR d.id = ?)"
_LOCATE_SQL = """
SELECT l.id, l.file FROM label_sets l JOIN datasets d ON d.id = l.dataset_id WHERE 1 = 1"""
_LABEL_SET_SQL = "SELECT dataset_id, file FROM label_sets WHERE id = ?"


def _as_id(dataset: str | int) -> int:
    """As everywhere in the store, a dataset given as a string of digits may be an id or a name;
    -1 matches no id."""
    number = dataset if isinstance(dataset, int) else plain_int(dataset)
    return -1 if number is None else number
