"""The stage-1 cache: every representation stage 2 and the baselines need, computed once.

Encoders are frozen after stage 1, so the unimodal representations h_u, the projected
multimodal representations z_u = Phi_u(h_M) and the stage-1 predictions of every clip are
computed once and kept here as float32 numpy arrays. Stage 2 (and ULGM / MLC) then run on
these arrays and cost a small fraction of stage 1, on the device stage 1 used (`device`).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mugcore.data.schema import MODALITIES, SPLITS


@dataclass
class SplitReps:
    """Representations of one split, one row per clip in the dataset's order.

    h[u]: (N, d_u) unimodal representation of modality u.
    z[u]: (N, d_u) projected multimodal representation Phi_u(h_M) in u's space.
    h_m: (N, d_M) fused multimodal representation.
    pred[u]: (N,) stage-1 unimodal predictor output P_u(h_u).
    pred_m: (N,) stage-1 multimodal predictor output P_M(h_M).
    y: (N,) multimodal labels.
    """

    h: dict[str, np.ndarray]
    z: dict[str, np.ndarray]
    h_m: np.ndarray
    pred: dict[str, np.ndarray]
    pred_m: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.y)
        for name, arrays in (("h", self.h), ("z", self.z), ("pred", self.pred)):
            assert set(arrays) == set(MODALITIES), f"{name} needs exactly {MODALITIES}"
            for modality, array in arrays.items():
                assert len(array) == n, f"{name}[{modality}] has {len(array)} rows, y has {n}"
        assert self.h_m.shape[0] == n and self.pred_m.shape == (n,)


@dataclass
class CachedReps:
    """Stage-1 output for a whole dataset.

    splits[split] holds the representations of that split (train, valid, test).
    train_snapshots[e] holds, after stage-1 epoch e, {"multimodal": (N_train, d_M),
    "text"/"audio"/"vision": (N_train, d_u)} representations of the train split; ULGM
    replays its per-epoch momentum rule on them. Empty unless asked for.
    bound: H, the label bound. info: stage-1 facts (epochs, best valid MAE, timings).
    device: the torch device stage 1 ran on; stage 2 and the baselines that train (mlc) run
    there too. The arrays themselves stay numpy on the CPU.
    """

    splits: dict[str, SplitReps]
    bound: float
    train_snapshots: list[dict[str, np.ndarray]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        assert set(self.splits) == set(SPLITS), f"splits must be {SPLITS}"
        n_train = len(self.splits["train"].y)
        for e, snapshot in enumerate(self.train_snapshots):
            assert set(snapshot) == {"multimodal", *MODALITIES}, f"snapshot {e} keys"
            assert all(len(a) == n_train for a in snapshot.values()), f"snapshot {e} rows"
