"""Per-clip uncertainty of uni-labels: the nine optional arrays a label set may carry.

Per modality m: `{m}_std` (a standard deviation) and `{m}_lower`, `{m}_upper` (a calibrated
interval whose level is in provenance["uncertainty"]["level"]). A label set carries all nine or
none; methods without uncertainty say why in provenance["uncertainty"] instead.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from mugcore.data.schema import MODALITIES
from mugcore.errors import UserError

STATS = ("std", "lower", "upper")
UNCERTAINTY_KEYS = tuple(f"{m}_{s}" for m in MODALITIES for s in STATS)
# Intervals are stored as float32; a bound equal to its label in float64 may round past it.
_INTERVAL_TOLERANCE = 1e-5

Uncertainty = dict[str, dict[str, float]]


def has_uncertainty(arrays: Mapping[str, Any]) -> bool:
    """True when all nine arrays are there, False when none is; UserError naming the missing
    ones when only some are."""
    present = [k for k in UNCERTAINTY_KEYS if k in arrays]
    if present and len(present) < len(UNCERTAINTY_KEYS):
        missing = [k for k in UNCERTAINTY_KEYS if k not in arrays]
        raise UserError(f"labels/{missing[0]}: missing; per-clip uncertainty needs all of "
                        f"{', '.join(UNCERTAINTY_KEYS)} or none (missing: {', '.join(missing)})")
    return bool(present)


def place_uncertainty(labels: Mapping[str, Any], order: np.ndarray,
                      placed: Mapping[str, np.ndarray], clip_id: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """The uncertainty arrays of `labels` (given in any clip order) checked and put in position
    order: `order[i]` is the position of input row i, `placed` holds the uni-labels already in
    position order, `clip_id` the clip ids by position (for messages). Empty when `labels`
    carries none."""
    if not has_uncertainty(labels):
        return {}
    n = len(clip_id)
    out: dict[str, np.ndarray] = {}
    for key in UNCERTAINTY_KEYS:
        values = np.asarray(labels[key])
        if values.ndim != 1 or len(values) != n:
            raise UserError(f"labels/{key}: {values.shape[0] if values.ndim else 0} entries "
                            f"(shape {values.shape}), labels/clip_id has {n}")
        if values.dtype.kind not in "fiu":
            raise UserError(f"labels/{key}: expected numbers, got dtype {values.dtype}")
        column = np.empty(n, dtype=np.float32)
        column[order] = values
        _fail_at(key, ~np.isfinite(column), clip_id, column, "not finite")
        out[key] = column
    for m in MODALITIES:
        std, lower, upper = (out[f"{m}_{s}"] for s in STATS)
        label = np.asarray(placed[m], dtype=np.float64)
        _fail_at(f"{m}_std", std < 0, clip_id, std, "negative")
        _fail_at(f"{m}_lower", lower > label + _INTERVAL_TOLERANCE, clip_id, lower,
                 f"above the {m} uni-label", label)
        _fail_at(f"{m}_upper", upper < label - _INTERVAL_TOLERANCE, clip_id, upper,
                 f"below the {m} uni-label", label)
    return out


def _fail_at(key: str, bad: np.ndarray, clip_id: np.ndarray, values: np.ndarray, what: str,
             label: np.ndarray | None = None) -> None:
    where = np.flatnonzero(bad)
    if len(where):
        i = int(where[0])
        beside = "" if label is None else f" (uni-label {float(label[i]):g})"
        raise UserError(f"labels/{key}: {len(where)} value(s) {what}, e.g. clip "
                        f"{clip_id[i]!r}: {float(values[i]):g}{beside}")


def clip_uncertainty(arrays: Mapping[str, np.ndarray], i: int) -> Uncertainty | None:
    """`{modality: {std, lower, upper}}` of clip position `i`, or None without uncertainty."""
    rows = rows_uncertainty(arrays, i, i + 1)
    return None if rows is None else rows[0]


def rows_uncertainty(arrays: Mapping[str, np.ndarray], start: int, stop: int
                     ) -> list[Uncertainty] | None:
    """`clip_uncertainty` of positions start..stop-1 in one pass (for pages of a bulk export)."""
    if UNCERTAINTY_KEYS[0] not in arrays:
        return None
    columns = {key: arrays[key][start:stop].tolist() for key in UNCERTAINTY_KEYS}
    return [{m: {s: columns[f"{m}_{s}"][i] for s in STATS} for m in MODALITIES}
            for i in range(stop - start)]
