"""Dataset validation: every problem found, one precise message each (split, key, index).

Checks are vectorised and work through large feature arrays in row blocks, so a
MOSEI-size file validates in seconds without float64 copies of its features.
"""

import contextlib
import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from mugcore.data.schema import LENGTH_KEYS, REQUIRED_KEYS, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import DatasetError, shorten
from mugcore.ids import MAX_CLIP_ID

FEATURE_KEYS = ("text", "text_bert", "audio", "vision")
LABEL_KEYS = ("regression_labels", *TRUTH_KEYS.values())
_SHOWN = 5  # indexes quoted per problem; the message also gives the full count
_BLOCK_BYTES = 64 << 20  # rows checked at a time, so temporaries stay small
# Characters a clip id may not hold: a look-up by id (a URL path, a CLI argument, a CSV row)
# could never name it. Control characters (C0, DEL, C1), surrogates, line separators.
_BAD_ID_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Dataset attributes are kept as JSON in the store: a few plain levels are all they need.
MAX_ATTRS_DEPTH = 16


def check_dataset(ds: MMSADataset, source: str) -> None:
    """Raise `DatasetError` listing every problem in `ds` (read from `source`)."""
    problems = validate_dataset(ds)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise DatasetError(f"{source}: {count}, first: {problems[0]}", problems)


def validate_dataset(ds: MMSADataset) -> list[str]:
    problems = [f"missing split '{s}'" for s in SPLITS if s not in ds.splits]
    attr_problems = _check_attrs(ds.attrs)
    problems += attr_problems
    bound = None  # without a usable bound, labels are checked for being finite numbers only
    if not any(p.startswith("label_bound") for p in attr_problems):
        # TypeError, ValueError: inferred from labels that are not numbers (reported below)
        with contextlib.suppress(TypeError, ValueError):
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
        problems += _check_ids(split, data["id"])
    return problems


def _check_ids(split: str, value: Any) -> list[str]:
    """Clip ids are what `/v1/labels/{clip_id}` and `labelgen labels` look up: strings of 1 to
    MAX_CLIP_ID characters that a URL or a command line can carry (no control characters)."""
    ids = _object_items(value)
    if ids is None:
        return []  # not a per-clip array: reported with the clip counts
    problems = []
    checks = [
        (lambda v: not isinstance(v, str), "is not a string"),
        (lambda v: isinstance(v, str) and not v, "is empty"),
        (lambda v: isinstance(v, str) and len(v) > MAX_CLIP_ID,
         f"is longer than {MAX_CLIP_ID} characters"),
        (lambda v: isinstance(v, str) and len(v) <= MAX_CLIP_ID and _BAD_ID_CHAR.search(v),
         "holds a control character or line break"),
    ]
    for test, what in checks:
        bad = np.flatnonzero([bool(test(v)) for v in ids])
        if bad.size:
            problems.append(f"{split}/id index {bad[0]}: clip id {shorten(ids[bad[0]])} {what}"
                            + _more(bad))
    return problems


def _object_items(value: Any) -> list[Any] | None:
    """The entries of a per-clip list or 1-D array, without numpy's guessing at nested ones."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return value.reshape(-1).tolist() if value.ndim == 1 else list(value)
    return None


def _check_attrs(attrs: dict[str, Any]) -> list[str]:
    problems = []
    if "label_bound" in attrs:
        problems += _bound_problems(attrs["label_bound"])
    depth = _depth(attrs, MAX_ATTRS_DEPTH + 1)
    if depth > MAX_ATTRS_DEPTH:
        problems.append(f"attrs: nested more than {MAX_ATTRS_DEPTH} levels deep")
    return problems


def _bound_problems(bound: Any) -> list[str]:
    """H, the label bound: labels live in [-H, H], so it must be a finite positive number."""
    if isinstance(bound, bool) or not isinstance(bound, int | float | np.integer | np.floating):
        return [f"label_bound: expected a number, got {shorten(bound)}"]
    if not (math.isfinite(float(bound)) and float(bound) > 0):
        return [f"label_bound: {float(bound)} is not a finite positive number"]
    return []


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of dicts and lists in `value`, counted no further than `limit`."""
    if limit <= 0 or not isinstance(value, dict | list | tuple):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


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
    lengths = _rectangular(value)
    if lengths is None:
        return [f"{where}: entries of different shapes, expected one integer length per clip"]
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
    labels = _rectangular(value)
    if labels is None:
        return [f"{where}: entries of different shapes, expected one number per clip"]
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


def _rectangular(value: Any) -> np.ndarray | None:
    """`value` as an array, or None when its entries differ in shape (a ragged list)."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        return None


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
        for index, clip in enumerate(_object_items(data["id"]) or []):
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
