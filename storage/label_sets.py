"""Label sets in the label store: immutable, published atomically (file first, then its row),
listed, found by id or as a dataset's latest, and deleted."""

import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mugcore.errors import UserError, shorten
from mugcore.ids import plain_int
from storage import files
from storage.datasets import as_text
from storage.errors import Conflict, NotFound, refuses_full_disk
from storage.models import ACTIVE_JOB_STATUSES, Clip, Dataset, Job, LabelSet
from storage.records import DatasetInfo, LabelSetInfo, plain_json, utc, utcnow
from storage.uncertainty import place_uncertainty

log = logging.getLogger(__name__)

LABELS_DIR = "labels"

LabelArrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ClipIndex:
    """A dataset's clips in position order (the order of label-set files)."""

    clip_id: np.ndarray
    split: np.ndarray
    multimodal: np.ndarray
    position_of: dict[str, int]


class LabelSetsMixin:
    """Label-set methods of `LabelStore` (which provides the sessions, datasets and cache)."""

    root: Path
    location: str
    _clip_indexes: dict[tuple[int, str], ClipIndex]

    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...
        def _dataset_row(self, s: Session, dataset: str | int) -> Dataset: ...
        def get_dataset(self, dataset: str | int) -> DatasetInfo: ...
        def _remember(self, label_set_id: int, arrays: LabelArrays) -> None: ...
        def _forget(self, ids: list[int]) -> None: ...
        def verified_label_file(self, label_set_id: int, rel: str, sha256: str) -> Path: ...

    def _clip_index(self, dataset: DatasetInfo) -> ClipIndex:
        key = (dataset.id, dataset.content_hash)
        index = self._clip_indexes.get(key)
        if index is None:
            with self._read() as s:
                rows = s.execute(select(Clip.clip_id, Clip.split, Clip.multimodal)
                                 .where(Clip.dataset_id == dataset.id)
                                 .order_by(Clip.position)).all()
            ids = np.array([r.clip_id for r in rows], dtype=str)
            index = ClipIndex(clip_id=ids, split=np.array([r.split for r in rows], dtype=str),
                               multimodal=np.array([r.multimodal for r in rows]),
                               position_of={c: i for i, c in enumerate(ids.tolist())})
            self._clip_indexes[key] = index
        return index

    @refuses_full_disk("publishing a label set")
    def publish_label_set(self, dataset: str | int, labels: Mapping[str, Any], *, method: str,
                          options: Mapping[str, Any], seed: int | None,
                          provenance: Mapping[str, Any] | None = None,
                          quality: Mapping[str, Any] | None = None) -> LabelSetInfo:
        """Publish uni-labels for every clip of `dataset` as a new immutable label set.

        `labels` holds arrays `clip_id`, `split`, `multimodal`, `text`, `audio`, `vision` over
        all clips in any order, and may hold the nine per-clip uncertainty arrays (see
        storage.uncertainty). Atomic: readers see the whole label set or none of it."""
        info = self.get_dataset(dataset)
        provenance = plain_json(dict(provenance or {}))
        given_hash = provenance.get("dataset_hash")
        if given_hash and given_hash != info.content_hash:
            raise Conflict(f"these labels were made from dataset content {given_hash[:12]}, "
                           f"but dataset {info.name!r} holds {info.content_hash[:12]}")
        arrays = align_labels(labels, self._clip_index(info), info)
        options, quality = plain_json(dict(options)), plain_json(dict(quality or {}))
        versions = {**plain_json(provenance.get("versions", {})), **store_versions()}
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
        row = s.get(LabelSet, parse_label_set_id(label_set))
        if row is None:
            raise NotFound(f"no label set {shorten(label_set)} in the store")
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
            row = s.get(LabelSet, parse_label_set_id(label_set))
            if row is None:
                raise NotFound(f"no label set {shorten(label_set)} in the store")
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
        """The label set's file, checked against the sha256 in its row (storage.integrity)."""
        return self.verified_label_file(label_set.id, label_set.file, label_set.file_sha256)


def parse_label_set_id(label_set: int | str) -> int:
    number = label_set if isinstance(label_set, int) else plain_int(str(label_set))
    if number is None:
        raise UserError(f"label set {shorten(label_set)}: expected an id or 'latest'")
    return number


def store_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("mug-unilabels", "numpy", "h5py", "sqlalchemy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def clip_positions(ids: np.ndarray, index: ClipIndex, info: DatasetInfo) -> np.ndarray:
    """Each id's position in the dataset; UserError for an unknown or repeated id."""
    order = np.fromiter((index.position_of.get(c, -1) for c in ids.tolist()), dtype=np.int64,
                        count=len(ids))
    if (order < 0).any():
        bad = ids[order < 0][:5].tolist()
        raise UserError(f"labels/clip_id: {int((order < 0).sum())} id(s) not in dataset "
                        f"{info.name!r}, e.g. {bad}")
    if len(np.unique(order)) != len(order):
        raise UserError("labels/clip_id: some clip ids appear more than once")
    return order


def align_labels(labels: Mapping[str, Any], index: ClipIndex, info: DatasetInfo) -> LabelArrays:
    """Check `labels` against the dataset's clips and put them in position order."""
    missing = [k for k in files.LABEL_KEYS if k not in labels]
    if missing:
        raise UserError(f"labels: missing key(s) {', '.join(missing)}")
    ids = np.array([as_text(c) for c in labels["clip_id"]], dtype=str)
    n = len(index.clip_id)
    for key in files.LABEL_KEYS:
        if len(labels[key]) != len(ids):
            raise UserError(f"labels/{key}: {len(labels[key])} entries, labels/clip_id has "
                            f"{len(ids)}")
    if len(ids) != n:
        raise UserError(f"labels: {len(ids)} clips, dataset {info.name!r} has {n}")
    order = clip_positions(ids, index, info)
    out: LabelArrays = {"clip_id": index.clip_id, "split": index.split}
    splits = np.empty(n, dtype=index.split.dtype)
    splits[order] = np.array([as_text(s) for s in labels["split"]], dtype=str)
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
    return out | place_uncertainty(labels, order, out, index.clip_id)
