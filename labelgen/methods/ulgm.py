"""`ulgm`: Self-MM's Unimodal Label Generation Module (Yu, Xu, Yuan, Wu; AAAI 2021).

The rule, as in the paper (section "ULGM") and the authors' code (thuiar/Self-MM,
`trains/multiTask/SELF_MM.py`, `update_centers` / `update_labels`):

- Class centres per modality s (and for the fused representation m), from the train
  clips' representations F_s(j) and the modality's current labels y_s(j):
  C_s^p = sum_j I(y_s(j) > 0) F_s(j) / sum_j I(y_s(j) > 0), C_s^n likewise with y_s(j) < 0
  (clips labelled exactly 0 belong to neither class). The fused centres use y_M.
- Distances D_s^p = ||F_s - C_s^p||, D_s^n = ||F_s - C_s^n||, and the relative distance
  alpha_s = (D_s^n - D_s^p) / (D_s^p + eps). The paper writes squared distances scaled
  by 1/sqrt(d); the released code uses the plain L2 norm, which is our default
  (`distance: l2`); `distance: squared_l2` gives the paper's form (the 1/sqrt(d) scale
  cancels in alpha up to eps).
- The uni-label combines the ratio form y_s^r = y_M alpha_s / alpha_m and the difference
  form y_s^d = y_M + alpha_s - alpha_m by their mean:
  y_s = 1/2 y_M alpha_s / (alpha_m + eps) + 1/2 (y_M + alpha_s - alpha_m),
  clipped to [-H, H].
- Epoch momentum: y_s^(i) = (i-1)/(i+1) y_s^(i-1) + 2/(i+1) y_s^i, starting from
  y_s^(0) = y_M, where y_s^i is the rule applied at epoch i.

This project's reading of it, on cached stage-1 representations: epoch i (1-based) uses
`reps.train_snapshots[i-1]`: its centres come from that snapshot's train representations
and the labels y_s^(i-1), and the rule is applied to the same snapshot. Self-MM labels
only the train clips; for valid and test clips we apply the rule once, without momentum,
to their final representations with the final centres (computed from the final train
representations and the final train uni-labels), so every split has uni-labels for
analysis.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from labelgen.stages.representations import CachedReps
from mugcore.data.schema import MODALITIES
from mugcore.errors import UserError

FUSED = "multimodal"


@dataclass
class UlgmConfig:
    """Options of `ulgm` (YAML section `ulgm:`).

    distance: `l2` (Self-MM's released code) or `squared_l2` (the paper's formula).
    eps: the small constant in the relative distance and in the ratio form (1e-8 as in
        Self-MM).
    """

    distance: Literal["l2", "squared_l2"] = "l2"
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.distance not in ("l2", "squared_l2"):
            raise UserError(f"ulgm.distance must be 'l2' or 'squared_l2', got {self.distance!r}")
        if not self.eps > 0:
            raise UserError(f"ulgm.eps must be > 0, got {self.eps}")


def class_centres(x: np.ndarray, labels: np.ndarray, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean representation of the clips labelled > 0 and of those labelled < 0: (d,), (d,)."""
    pos, neg = labels > 0, labels < 0
    for name, mask in (("positive", pos), ("negative", neg)):
        if not mask.any():
            raise UserError(f"ulgm: {what}: no train clip has a {name} label, so the {name} "
                            "class centre is undefined")
    return x[pos].mean(axis=0), x[neg].mean(axis=0)


def relative_distance(x: np.ndarray, centres: tuple[np.ndarray, np.ndarray], *,
                      config: UlgmConfig) -> np.ndarray:
    """alpha = (D^n - D^p) / (D^p + eps) for each row of x (N, d) -> (N,)."""
    c_pos, c_neg = centres
    d_pos = np.linalg.norm(x - c_pos, axis=1)  # (N,)
    d_neg = np.linalg.norm(x - c_neg, axis=1)  # (N,)
    if config.distance == "squared_l2":
        d_pos, d_neg = d_pos**2, d_neg**2
    return (d_neg - d_pos) / (d_pos + config.eps)


def unimodal_rule(y_m: np.ndarray, alpha_s: np.ndarray, alpha_m: np.ndarray, *,
                  bound: float, eps: float) -> np.ndarray:
    """Mean of the ratio and difference forms, clipped to [-H, H]."""
    ratio = y_m * alpha_s / (alpha_m + eps)
    difference = y_m + alpha_s - alpha_m
    return np.clip(0.5 * ratio + 0.5 * difference, -bound, bound)


def generate(reps: CachedReps, *, bound: float, config: UlgmConfig,
             seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Uni-labels for every split (modality -> split -> (N,)); deterministic, so `seed` is
    unused."""
    del seed
    if not reps.train_snapshots:
        raise UserError("ulgm needs per-epoch train representations from stage 1 "
                        "(train_snapshots is empty)")
    y_m = np.asarray(reps.splits["train"].y, dtype=np.float64)
    labels = {u: y_m.copy() for u in MODALITIES}
    for epoch, snapshot in enumerate(reps.train_snapshots, start=1):
        fused = np.asarray(snapshot[FUSED], dtype=np.float64)
        alpha_m = relative_distance(
            fused, class_centres(fused, y_m, what=f"epoch {epoch}, {FUSED}"), config=config)
        for u in MODALITIES:
            x = np.asarray(snapshot[u], dtype=np.float64)
            centres = class_centres(x, labels[u], what=f"epoch {epoch}, {u}")
            new = unimodal_rule(y_m, relative_distance(x, centres, config=config), alpha_m,
                                bound=bound, eps=config.eps)
            labels[u] = (epoch - 1) / (epoch + 1) * labels[u] + 2 / (epoch + 1) * new

    train = reps.splits["train"]
    final_centres = {u: class_centres(np.asarray(train.h[u], dtype=np.float64), labels[u],
                                      what=f"final train, {u}") for u in MODALITIES}
    final_centres[FUSED] = class_centres(np.asarray(train.h_m, dtype=np.float64), y_m,
                                         what=f"final train, {FUSED}")
    out: dict[str, dict[str, np.ndarray]] = {u: {"train": np.clip(labels[u], -bound, bound)}
                                             for u in MODALITIES}
    for split in ("valid", "test"):
        part = reps.splits[split]
        alpha_m = relative_distance(np.asarray(part.h_m, dtype=np.float64),
                                    final_centres[FUSED], config=config)
        for u in MODALITIES:
            alpha_s = relative_distance(np.asarray(part.h[u], dtype=np.float64),
                                        final_centres[u], config=config)
            out[u][split] = unimodal_rule(np.asarray(part.y, dtype=np.float64), alpha_s,
                                          alpha_m, bound=bound, eps=config.eps)
    for u, per_split in out.items():
        for split, values in per_split.items():
            if not np.isfinite(values).all():
                raise UserError(f"ulgm: non-finite {u} uni-labels in split '{split}' "
                                "(degenerate representations: a distance to a centre is 0)")
    return out


Config = UlgmConfig  # the name the method registry looks up
