"""Corrections that can point either way: uni-labels made consistent with how y_M is made.

Why. A MUCN trained to recover y_M from a noisy y_M returns something between y_M and what
the modality predicts of y_M, itself pulled toward the mean: it can only shrink a label toward
zero. That is right for a muted modality (a flat voice, a neutral face) and wrong for the
modality that dominates the mix and speaks loudest, whose own sentiment lies *further out*
than y_M. On data where text plays that role MUCN's text labels were 28-88 % worse than copy.

The constraint. y_M is made by mixing the modalities' own sentiments and adding annotator
noise: y_M = sum_u w_u s_u + e with weights w on the simplex. So the true shifts
d_u = s_u - y_M satisfy sum_u w_u d_u = -e, which is zero on average for any y_M: when the
muted modalities shift toward zero, the dominant one must shift outward. MUCN's shifts break
this (all of them point toward zero). `make_consistent` finds the smallest change to MUCN's
shifts, in the metric sum_u (change_u)^2 / v_u, that restores it:

    d'_u = d_u + v_u w_u g / sum_k w_k^2 v_k,   g = the systematic gap -(sum_k w_k d_k)

with v_u = w_u for a modality whose correction the gate kept (the dominant modality, whose
MUCN label is the most wrong by the argument above, absorbs most) and v_u = 0 for one the
gate sent to copy (its label stays y_M). The gap is the straight line a + b y_M fitted
to -(sum_k w_k d_k) over the train clips, not each clip's own gap: a clip's gap also holds
its annotator noise e, which would otherwise be spread into every label (tried on the tuning
seeds: per-clip gaps cost text 5-12 points against the fitted line).

The weights. w is the simplex least-squares fit of y_M on the stage-1 unimodal predictions
P_u(h_u) over held-out rows (validation clips, and the train clips when stage 1 was
cross-fitted): the mix of what each modality shows that best reproduces y_M.

Direction check (the gate's second question, after "does the modality carry information of
its own"). The gap line is fitted again on the validation clips alone, whose labels came out
of the same MUCNs without being in the fit; the correction is applied with strength
clip(b_valid / b_train, 0, 1): fully when held-out clips show the same systematic gap, not at
all when they show it the other way round. Per modality, the slope of the final correction on
y_M is reported beside MUCN's, so provenance says which way each label moved.

When it cannot work. If y_M is not (close to) a weighted mean of the uni-labels on one scale
(for example annotators who read the modalities on different scales, or a y_M that is a
non-linear function of them), the constraint is wrong and so is the push. If every modality's
stage-1 predictor is poor, the weights are poorly determined; the direction check then
usually finds the held-out gap unstable and applies little. A modality the features do not
see at all gets labels by the constraint alone only if the gate kept it, which it does not.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from labelgen.stages.representations import CachedReps
from mugcore.data.schema import MODALITIES


@dataclass(frozen=True)
class Consistency:
    weights: dict[str, float]  # the mixing weights w (simplex)
    slope_train: float  # b of the gap line a + b y_M on the train clips
    slope_valid: float  # the same on the validation clips
    strength: float  # the share of the consistent correction applied, in [0, 1]
    direction: dict[str, dict[str, float]]  # per modality: slopes of MUCN's and the final shift

    def as_dict(self) -> dict[str, object]:
        return {"weights": {m: round(w, 4) for m, w in self.weights.items()},
                "gap_slope_train": round(self.slope_train, 4),
                "gap_slope_valid": round(self.slope_valid, 4),
                "strength": round(self.strength, 4), "direction": self.direction}


def mixing_weights(reps: CachedReps, *, train_out_of_fold: bool) -> dict[str, float]:
    """Simplex least squares of y_M on the stage-1 unimodal predictions, held-out rows."""
    splits = ["valid", "train"] if train_out_of_fold else ["valid"]
    y = np.concatenate([reps.splits[s].y for s in splits]).astype(np.float64)
    x = np.column_stack([np.concatenate([reps.splits[s].pred[m] for s in splits])
                         for m in MODALITIES]).astype(np.float64)
    # sum(w) = 1 enforced as one heavily weighted extra row of the least-squares system
    big = 100.0 * np.sqrt(len(y))
    w, _ = nnls(np.vstack([x, np.full((1, x.shape[1]), big)]), np.append(y, big))
    w = w / w.sum() if w.sum() > 0 else np.full(len(MODALITIES), 1.0 / len(MODALITIES))
    return {m: float(v) for m, v in zip(MODALITIES, w, strict=True)}


def make_consistent(labels: dict[str, np.ndarray], y_m: np.ndarray, *,
                    weights: dict[str, float], keep: dict[str, float], n_train: int,
                    n_valid: int, bound: float,
                    direction_check: bool = True) -> tuple[dict[str, np.ndarray], Consistency]:
    """The labels (all clips, train..test order) moved onto the constraint (module doc)."""
    y = y_m.astype(np.float64)
    shifts = np.column_stack([labels[m] for m in MODALITIES]).astype(np.float64) - y[:, None]
    w = np.array([weights[m] for m in MODALITIES])
    gap = -(shifts @ w)  # (N,)
    train, valid = slice(0, n_train), slice(n_train, n_train + n_valid)
    intercept, slope_train = _line(y[train], gap[train])
    slope_valid = _line(y[valid], gap[valid])[1]
    strength = 1.0
    if direction_check:
        strength = (float(np.clip(slope_valid / slope_train, 0.0, 1.0))
                    if abs(slope_train) > 1e-9 else 0.0)
    v = w * np.array([1.0 if keep[m] > 0 else 0.0 for m in MODALITIES])
    denom = float((v * w**2).sum())
    smooth = intercept + slope_train * y
    moved = shifts
    if denom > 0 and strength > 0:
        moved = shifts + strength * np.outer(smooth, v * w / denom)
    out = {m: np.clip(y + moved[:, i], -bound, bound).astype(np.float32)
           for i, m in enumerate(MODALITIES)}
    direction = {m: {"mucn_slope": round(_line(y[train], shifts[train, i])[1], 4),
                     "final_slope": round(_line(y[train], out[m][train] - y[train])[1], 4)}
                 for i, m in enumerate(MODALITIES)}
    return out, Consistency(weights=dict(weights), slope_train=slope_train,
                            slope_valid=slope_valid, strength=strength, direction=direction)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares line y ~ a + b x: (a, b)."""
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(a), float(b)
