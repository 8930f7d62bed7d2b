"""The field's standard MSA metrics (MMSA's definitions) and uni-label quality figures.

Conventions shared by every function here:
- Inputs are array-likes of equal length (numpy, lists or CPU tensors); they are flattened.
- `Corr` is Pearson's r; when either side is constant r is undefined and we report 0.0
  (no linear association can be measured), which keeps reports and API bodies JSON-safe.
- A figure over an empty selection (Non0_* when every truth is exactly 0) is NaN.
- Weighted F1 is sklearn's `f1_score(average="weighted", zero_division=0)`, computed here in
  numpy (tested against sklearn): importing scikit-learn would add 170 MB to every trainer
  process, a tenth of its peak memory, for this one function.
"""

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

Metrics = dict[str, float]

# Inner bin edges for SIMS; a value x falls in bin k = #{edges e : x > e}, i.e. bins are
# closed on the right: [-1, e0], (e0, e1], ..., (e_last, 1].
SIMS_EDGES = {
    2: (0.0,),
    3: (-0.1, 0.1),
    5: (-0.7, -0.1, 0.1, 0.7),
}


def _pair(pred: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    y = np.asarray(truth, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"pred has {p.size} values but truth has {y.size}")
    if p.size == 0:
        raise ValueError("metrics need at least one prediction")
    if not (np.isfinite(p).all() and np.isfinite(y).all()):
        raise ValueError("pred and truth must be finite (found NaN or inf)")
    return p, y


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; 0.0 when either side is constant (see module docstring)."""
    # Test constancy on the raw values: after centring, rounding leaves tiny non-zeros.
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    a = a - a.mean()
    b = b - b.mean()
    return float(np.clip((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()), -1.0, 1.0))


def f1_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Support-weighted mean over the classes of either side of F1 = 2 tp / (2 tp + fp + fn);
    0 where a class is never right (sklearn's zero_division=0)."""
    classes = np.union1d(y_true, y_pred)
    t = y_true[:, None] == classes[None, :]  # (n, classes)
    p = y_pred[:, None] == classes[None, :]
    tp = (t & p).sum(axis=0)
    f1 = 2 * tp / np.maximum(t.sum(axis=0) + p.sum(axis=0), 1)  # 2tp + fp + fn = |t| + |p|
    support = t.sum(axis=0)
    return float((f1 * support).sum() / support.sum()) if support.sum() else 0.0


def _acc_f1(p_cls: np.ndarray, y_cls: np.ndarray) -> tuple[float, float]:
    if y_cls.size == 0:
        return float("nan"), float("nan")
    acc = float((p_cls == y_cls).mean())
    f1 = f1_score(y_cls, p_cls)
    return acc, f1


def mosi_metrics(pred: ArrayLike, truth: ArrayLike) -> Metrics:
    """MOSI/MOSEI metrics (labels in [-3, 3])."""
    p, y = _pair(pred, truth)
    has0_acc, has0_f1 = _acc_f1(p >= 0, y >= 0)
    nonzero = y != 0
    non0_acc, non0_f1 = _acc_f1(p[nonzero] > 0, y[nonzero] > 0)
    # np.round rounds half to even, as MMSA does: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2.
    acc7 = float((np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3))).mean())
    acc5 = float((np.round(np.clip(p, -2, 2)) == np.round(np.clip(y, -2, 2))).mean())
    return {
        "Has0_acc_2": has0_acc,
        "Has0_F1_score": has0_f1,
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": acc5,
        "Mult_acc_7": acc7,
        "MAE": float(np.abs(p - y).mean()),
        "Corr": pearson(p, y),
    }


def sims_bins(x: np.ndarray, n_classes: int) -> np.ndarray:
    """SIMS class of each value already clipped to [-1, 1] (see SIMS_EDGES)."""
    edges = np.asarray(SIMS_EDGES[n_classes])
    return (x[:, None] > edges[None, :]).sum(axis=1)


def sims_metrics(pred: ArrayLike, truth: ArrayLike) -> Metrics:
    """CH-SIMS metrics (labels in [-1, 1]); as in MMSA, MAE and Corr use clipped values."""
    p, y = _pair(pred, truth)
    p, y = np.clip(p, -1, 1), np.clip(y, -1, 1)
    out: Metrics = {}
    for n in (2, 3, 5):
        out[f"Mult_acc_{n}"] = float((sims_bins(p, n) == sims_bins(y, n)).mean())
    out["F1_score"] = f1_score(sims_bins(y, 2), sims_bins(p, 2))
    out["MAE"] = float(np.abs(p - y).mean())
    out["Corr"] = pearson(p, y)
    return out


def metrics_for_bound(label_bound: float) -> Callable[[ArrayLike, ArrayLike], Metrics]:
    """The metric family for labels in [-H, H]: MOSI-style for H >= 2, SIMS-style below."""
    return mosi_metrics if label_bound >= 2 else sims_metrics


def unilabel_quality(
    labels: Mapping[str, ArrayLike],
    truth: Mapping[str, ArrayLike],
    multimodal: ArrayLike,
) -> dict[str, dict[str, float]]:
    """Per modality: MAE and Pearson r of the uni-labels against ground truth, beside the
    same figures for the `copy` baseline (the multimodal label as the uni-label)."""
    missing = sorted(set(labels) - set(truth))
    if missing:
        raise ValueError(f"no ground truth for modalities {missing}")
    y_m = np.asarray(multimodal, dtype=np.float64).reshape(-1)
    out: dict[str, dict[str, float]] = {}
    for modality, lab in labels.items():
        u, y = _pair(lab, truth[modality])
        if y.shape != y_m.shape:
            raise ValueError(
                f"{modality}: {y.size} ground-truth values but {y_m.size} multimodal labels"
            )
        out[modality] = {
            "mae": float(np.abs(u - y).mean()),
            "corr": pearson(u, y),
            "copy_mae": float(np.abs(y_m - y).mean()),
            "copy_corr": pearson(y_m, y),
        }
    return out
