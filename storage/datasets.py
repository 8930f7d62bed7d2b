"""Datasets in the label store: registration (features copied into an HDF5 file, one row per
clip), look-up by name or id, and deletion with everything that hangs off a dataset."""

import logging
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mugcore.data.hashing import dataset_hash
from mugcore.data.io import load_dataset, save_dataset
from mugcore.data.schema import SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.data.validate import check_dataset
from mugcore.errors import UserError, shorten
from mugcore.ids import plain_int
from storage.errors import Conflict, NotFound, refuses_full_disk
from storage.models import ACTIVE_JOB_STATUSES, Clip, Dataset, Job, LabelSet
from storage.records import DatasetInfo, plain_float, plain_json, utc, utcnow

log = logging.getLogger(__name__)

DATASETS_DIR = "datasets"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DatasetsMixin:
    """Dataset methods of `LabelStore` (which provides the sessions, root and label cache)."""

    root: Path
    location: str

    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...
        def _forget(self, ids: list[int]) -> None: ...
        def verified_features_file(self, name: str, rel: str) -> Path: ...

    @refuses_full_disk("registering a dataset")
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
        number = dataset if isinstance(dataset, int) else plain_int(dataset)
        if number is not None:
            row = s.get(Dataset, number)
            if row is None and isinstance(dataset, str):
                row = s.scalar(select(Dataset).where(Dataset.name == dataset))
        else:
            row = s.scalar(select(Dataset).where(Dataset.name == dataset))
        if row is None:
            raise NotFound(f"no dataset {shorten(dataset)} in the store")
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
        """The HDF5 feature file of a dataset (MMSA keys, readable by mugcore.data.io), checked
        to be a readable HDF5 file (storage.integrity)."""
        info = self.get_dataset(dataset)
        return self.verified_features_file(info.name, info.features_file)

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
        labels = np.asarray(data["regression_labels"]).reshape(-1)
        truth = {m: np.asarray(data[k]).reshape(-1) if k in data else None
                 for m, k in TRUTH_KEYS.items()}
        for row, (clip_id, label) in enumerate(zip(data["id"], labels, strict=True)):
            rows.append({"clip_id": as_text(clip_id), "split": split, "row": row,
                         "position": len(rows), "multimodal": plain_float(label),
                         **{f"truth_{m}": None if t is None else plain_float(t[row])
                            for m, t in truth.items()}})
    return rows


def as_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
