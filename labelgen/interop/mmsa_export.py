"""A dataset with a label set's uni-labels in MMSA's per-modality keys, as MMSA's own loader
reads them (`regression_labels_T/_A/_V` for `dataset_name='sims'`), plus its provenance.

Only the six per-modality keys are written; every other key keeps the array the dataset was
imported with (same object, so the same bytes). A label set must cover every clip: a
partial one would leave MMSA training some clips on labels from somewhere else."""

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mugcore.data.hashing import dataset_hash
from mugcore.data.io import save_dataset
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import UserError
from storage.files import sha256_file

CLASS_KEYS = {"text": "classification_labels_T", "audio": "classification_labels_A",
              "vision": "classification_labels_V"}
# MMSA's documented class coding of a sentiment value: Negative(< 0) 0, Neutral(0) 1,
# Positive(> 0) 2.
CLASS_RULE = "0 if value < 0, 1 if value == 0, 2 if value > 0 (MMSA's Negative/Neutral/Positive)"
PROVENANCE_FORMAT = "mug-mmsa-export"


def with_labels(ds: MMSADataset, labels: Mapping[str, np.ndarray]) -> MMSADataset:
    """A shallow copy of `ds` whose per-modality keys hold `labels` (arrays `clip_id`, `text`,
    `audio`, `vision` in any order); UserError naming the clips when they do not cover the
    dataset exactly."""
    ids = [str(c) for c in np.asarray(labels["clip_id"]).tolist()]
    where = {c: i for i, c in enumerate(ids)}
    if len(where) != len(ids):
        raise UserError("labels/clip_id: some clip ids appear more than once")
    splits: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    n_missing = n_dataset = 0
    for name, data in ds.splits.items():
        split_ids = [str(c) for c in np.asarray(data["id"], dtype=object).tolist()]
        n_dataset += len(split_ids)
        order = np.array([where.get(c, -1) for c in split_ids], dtype=np.int64)
        n_missing += int((order < 0).sum())
        missing += [c for c, i in zip(split_ids, order, strict=True) if i < 0][:5]
        out = dict(data)  # the other keys: the very arrays the dataset holds
        if (order >= 0).all():
            for m in MODALITIES:
                values = np.asarray(labels[m])[order]
                out[TRUTH_KEYS[m]] = values
                cls_dtype = np.asarray(data.get("classification_labels", values)).dtype
                out[CLASS_KEYS[m]] = (np.sign(values) + 1).astype(cls_dtype)
        splits[name] = out
    if missing:
        raise UserError(f"the label set does not cover every clip of the dataset: {n_missing} "
                        f"of {n_dataset} clip(s) have no label, e.g. {missing[:5]}")
    if len(ids) != n_dataset:
        raise UserError(f"the label set has {len(ids)} clips, the dataset {n_dataset}: "
                        "it labels clips the dataset does not have")
    return MMSADataset(splits=splits, attrs=dict(ds.attrs))


def replaced_keys(ds: MMSADataset) -> list[str]:
    """The per-modality keys the dataset already had (its own truth), which the export
    replaces: the provenance says so, since the file no longer carries them."""
    keys = {*TRUTH_KEYS.values(), *CLASS_KEYS.values()}
    return sorted({k for s in ds.splits.values() for k in s if k in keys})


def provenance_path(out: Path) -> Path:
    return out.with_name(out.name + ".provenance.json")


def write_export(ds: MMSADataset, labels: Mapping[str, np.ndarray], out: Path, *,
                 source: Mapping[str, Any]) -> dict[str, Any]:
    """Write `ds` with `labels` as an MMSA pickle at `out` and its provenance beside it
    (`<out>.provenance.json`); returns the provenance. `source` names where the labels come
    from (label set id, method, store or file)."""
    exported = with_labels(ds, labels)
    save_dataset(exported, out)
    provenance = {
        "format": PROVENANCE_FORMAT,
        "file": out.name,
        "file_sha256": sha256_file(out),
        "content_sha256": dataset_hash(exported),
        "dataset_content_sha256": dataset_hash(ds),
        "labels": dict(source),
        "written_keys": {m: [TRUTH_KEYS[m], CLASS_KEYS[m]] for m in MODALITIES},
        "replaced_keys": replaced_keys(ds),
        "classification_rule": CLASS_RULE,
        "other_keys": "as imported (same arrays, bit for bit)",
        "splits": {s: len(ds.splits[s]["id"]) for s in SPLITS if s in ds.splits},
        "synthetic": bool(ds.attrs.get("synthetic", False)),
        "created_at": datetime.now(UTC).isoformat(),
        "mug_unilabels": _version(),
    }
    write_json(provenance_path(out), provenance)
    return provenance


def write_json(path: Path, value: Any) -> None:
    """JSON written under a temporary name and renamed, so no reader sees half of it."""
    temp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        temp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _version() -> str:
    try:
        return metadata.version("mug-unilabels")
    except metadata.PackageNotFoundError:
        return "unknown"
