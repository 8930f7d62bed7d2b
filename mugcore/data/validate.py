"""Dataset validation: every problem found, one precise message each (split, key, index).

Checks are vectorised and work through large feature arrays in row blocks, so a
MOSEI-size file validates in seconds without float64 copies of its features.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np

from mugcore.data.schema import LENGTH_KEYS, REQUIRED_KEYS, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import DatasetError

FEATURE_KEYS = ("text", "text_bert", "audio", "vision")
LABEL_KEYS = ("regression_labels", *TRUTH_KEYS.values())
_SHOWN = 5  # indexes quoted per problem; the message also gives the full count
_BLOCK_BYTES = 64 << 20  # rows checked at a time, so temporaries stay small


def check_dataset(ds: MMSADataset, source: str) -> None:
    """Raise `DatasetError` listing every problem in `ds` (read from `source`)."""
    problems = validate_dataset(ds)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise DatasetError(f"{source}: {count}, first: {problems[0]}", problems)


def validate_dataset(ds: MMSADataset) -> list[str]:
    problems = [f"missing split '{s}'" for s in SPLITS if s not in ds.splits]
    bound = ds.label_bound
    for split, data in ds.splits.items():
        problems += _check_split(split, data, bound)
    problems += _check_across_splits(ds)
    problems += _check_duplicate_ids(ds)
    return problems


def _check_split(split: str, data: dict[str, Any], bound: float) -> list[str]:
    problems = [f"{split}: missing required key '{k}'" for k in REQUIRED_KEYS if k not in data]
    count_key = next((k for k in ("regression_labels", "id") if k in data), None)
    if count_key is None:
        return problems
    n = _length(data[count_key])
    if n is None:
        return [*problems, f"{split}/{count_key}: not a per-clip array"]
    if n == 0:
        problems.append(f"{split}: empty split (0 clips)")
    for key, value in data.items():
        m = _length(value)
        if m is None:
            problems.append(f"{split}/{key}: {type(value).__name__} is not a per-clip array")
        elif m != n:
            problems.append(f"{split}/{key}: {m} clips, but {split}/{count_key} has {n}")
    for key in FEATURE_KEYS:
        if key in data:
            problems += _check_features(split, key, data[key])
    for modality, length_key in LENGTH_KEYS.items():
        if length_key in data and isinstance(data.get(modality), np.ndarray):
            problems += _check_lengths(split, length_key, data[length_key], data[modality])
    for key in (*LABEL_KEYS, "classification_labels"):
        if key in data:
            problems += _check_labels(split, key, data[key], bound if key in LABEL_KEYS else None)
    if "id" in data:
        ids = np.asarray(data["id"], dtype=object).reshape(-1)
        bad = np.flatnonzero([not isinstance(v, str) for v in ids])
        if bad.size:
            problems.append(f"{split}/id index {bad[0]}: clip id {ids[bad[0]]!r} is not a string"
                            + _more(bad))
    return problems


def _length(value: Any) -> int | None:
    if isinstance(value, np.ndarray):
        return value.shape[0] if value.ndim else None
    return len(value) if isinstance(value, list | tuple) else None


def _check_features(split: str, key: str, value: Any) -> list[str]:
    where = f"{split}/{key}"
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
        what = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        return [f"{where}: expected a numeric array, got {what}"]
    if value.ndim != 3:
        layout = "(N, 3, Lt)" if key == "text_bert" else "(N, L, D)"
        return [f"{where}: shape {value.shape}, expected {layout}"]
    if key == "text_bert" and value.shape[1] != 3:
        return [f"{where}: shape {value.shape}, expected (N, 3, Lt): token ids, attention "
                "mask and segment ids"]
    bad = _nonfinite_rows(value)
    if bad.size:
        return [f"{where} index {bad[0]}: NaN or inf in features" + _more(bad)]
    return []


def _nonfinite_rows(value: np.ndarray) -> np.ndarray:
    """Indexes of the clips (rows) holding a NaN or inf, checked a block of rows at a time."""
    if value.dtype.kind != "f" or value.size == 0:
        return np.zeros(0, dtype=np.int64)
    rows = max(1, _BLOCK_BYTES // max(1, value[0].nbytes))
    bad = [start + np.flatnonzero(~np.isfinite(value[start:start + rows]).reshape(
        min(rows, len(value) - start), -1).all(axis=1)) for start in range(0, len(value), rows)]
    return np.concatenate(bad)


def _check_lengths(split: str, key: str, value: Any, features: np.ndarray) -> list[str]:
    where = f"{split}/{key}"
    lengths = np.asarray(value)
    if lengths.dtype.kind not in "iuf" or lengths.ndim != 1:
        return [f"{where}: expected one integer length per clip, got dtype {lengths.dtype}, "
                f"shape {lengths.shape}"]
    if lengths.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(lengths) | (lengths != np.round(lengths)))
        if bad.size:
            return [f"{where} index {bad[0]}: length {lengths[bad[0]]} is not an integer"
                    + _more(bad)]
    if features.ndim < 2 or len(lengths) != len(features):
        return []  # the clip-count and shape checks already report this
    padded = features.shape[1]
    bad = np.flatnonzero((lengths < 1) | (lengths > padded))
    if bad.size:
        return [f"{where} index {bad[0]}: length {lengths[bad[0]]} outside [1, {padded}] "
                f"(the padded length of {split}/{key.removesuffix('_lengths')})" + _more(bad)]
    return []


def _check_labels(split: str, key: str, value: Any, bound: float | None) -> list[str]:
    where = f"{split}/{key}"
    labels = np.asarray(value)
    if labels.dtype.kind not in "iuf":
        return [f"{where}: expected numeric labels, got dtype {labels.dtype}"]
    # MMSA files store labels as (N,) and sometimes (N, 1).
    if not (labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)):
        return [f"{where}: shape {labels.shape}, expected (N,) or (N, 1)"]
    labels = labels.reshape(-1)
    bad = np.flatnonzero(~np.isfinite(labels))
    if bad.size:
        return [f"{where} index {bad[0]}: label is {labels[bad[0]]}" + _more(bad)]
    if bound is None:
        return []
    bad = np.flatnonzero(np.abs(labels) > bound)
    if bad.size:
        return [f"{where} index {bad[0]}: label {labels[bad[0]]:g} outside "
                f"[-{bound:g}, {bound:g}]" + _more(bad)]
    return []


def _check_across_splits(ds: MMSADataset) -> list[str]:
    """Feature dims must agree between splits; padded lengths may differ (split-wise batches)."""
    problems = []
    reference: dict[str, tuple[str, int]] = {}
    for split, data in ds.splits.items():
        for key in ("text", "audio", "vision"):
            value = data.get(key)
            if not isinstance(value, np.ndarray) or value.ndim != 3:
                continue
            ref_split, ref_dim = reference.setdefault(key, (split, value.shape[2]))
            if value.shape[2] != ref_dim:
                problems.append(f"{split}/{key}: feature dim {value.shape[2]}, but "
                                f"{ref_split}/{key} has {ref_dim}")
    for key in (*LENGTH_KEYS.values(), *TRUTH_KEYS.values()):
        having = [s for s, data in ds.splits.items() if key in data]
        if having and len(having) < len(ds.splits):
            missing = [s for s in ds.splits if s not in having]
            problems.append(f"{', '.join(missing)}: missing key '{key}', which "
                            f"{', '.join(having)} has")
    return problems


def _check_duplicate_ids(ds: MMSADataset) -> list[str]:
    problems = []
    first_seen: dict[str, tuple[str, int]] = {}
    for split, data in ds.splits.items():
        if _length(data.get("id")) is None:
            continue
        duplicates = []
        for index, clip in enumerate(np.asarray(data["id"], dtype=object).reshape(-1).tolist()):
            if not isinstance(clip, str):
                continue
            seen = first_seen.setdefault(clip, (split, index))
            if seen != (split, index):
                duplicates.append((index, clip, seen))
        if duplicates:
            index, clip, (seen_split, seen_index) = duplicates[0]
            problems.append(
                f"{split}/id index {index}: duplicate clip id {clip!r} (also {seen_split} index "
                f"{seen_index})" + _more(np.array([d[0] for d in duplicates])))
    return problems


def _more(indexes: Iterable[int]) -> str:
    indexes = np.asarray(indexes)
    if indexes.size <= 1:
        return ""
    shown = ", ".join(str(i) for i in indexes[:_SHOWN])
    tail = ", ..." if indexes.size > _SHOWN else ""
    return f" ({indexes.size} clips in all, at indexes {shown}{tail})"
