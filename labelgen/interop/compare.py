"""One table of a dataset's label sets side by side, against copy (the multimodal label used
as every uni-label) and, where the dataset has it, the per-modality truth.

Per label set and modality: MAE and Pearson r against the truth, the mean distance from copy
(|uni-label - y_M|), the fraction of clips moved from copy by more than a threshold (H/6 by
default, as in the explorer), and the share of truths inside the label set's interval where it
carries one. `copy` itself is the first row, so each figure has its baseline beside it."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mugcore.data.schema import MODALITIES
from mugcore.metrics import pearson

COLUMNS = ("label set", "method", "modality", "MAE truth", "r truth", "|uni - y_M|", "moved",
           "coverage")


@dataclass(frozen=True)
class CompareRow:
    name: str
    method: str
    modality: str
    mae_truth: float | None
    r_truth: float | None
    distance_copy: float
    moved: float
    coverage: float | None

    def cells(self) -> list[str]:
        return [self.name, self.method, self.modality, _num(self.mae_truth), _num(self.r_truth),
                _num(self.distance_copy), _num(self.moved), _num(self.coverage)]


def default_threshold(bound: float) -> float:
    return round(bound / 6, 3)


def compare_rows(label_sets: Sequence[tuple[str, str, Mapping[str, np.ndarray]]], *,
                 multimodal: np.ndarray, truth: Mapping[str, np.ndarray] | None,
                 threshold: float, mask: np.ndarray | None = None) -> list[CompareRow]:
    """`label_sets`: (name, method, arrays in the dataset's position order); `mask` keeps some
    clips (a split). The first rows are copy's."""
    keep = np.ones(len(multimodal), dtype=bool) if mask is None else mask
    y_m = np.asarray(multimodal, dtype=np.float64)[keep]
    rows = []
    for name, method, arrays in [("copy", "copy", {m: multimodal for m in MODALITIES}),
                                 *label_sets]:
        for m in MODALITIES:
            uni = np.asarray(arrays[m], dtype=np.float64)[keep]
            moved = np.abs(uni - y_m)
            mae = r = coverage = None
            if truth is not None and len(uni):
                t = np.asarray(truth[m], dtype=np.float64)[keep]
                mae, r = float(np.abs(uni - t).mean()), pearson(uni, t)
                if f"{m}_lower" in arrays:
                    lower = np.asarray(arrays[f"{m}_lower"])[keep]
                    upper = np.asarray(arrays[f"{m}_upper"])[keep]
                    coverage = float(((t >= lower) & (t <= upper)).mean())
            rows.append(CompareRow(name=name, method=method, modality=m, mae_truth=mae,
                                   r_truth=r, distance_copy=float(moved.mean()) if len(uni)
                                   else 0.0, moved=float((moved > threshold).mean())
                                   if len(uni) else 0.0, coverage=coverage))
    return rows


def format_table(rows: Sequence[CompareRow]) -> str:
    table = [list(COLUMNS)] + [row.cells() for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
