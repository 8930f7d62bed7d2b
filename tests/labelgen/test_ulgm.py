"""ULGM on tiny 1-d representations whose centres, distances and labels are worked by hand."""

import numpy as np
import pytest

from labelgen.methods.ulgm import UlgmConfig, generate, relative_distance
from labelgen.stages.representations import CachedReps, SplitReps
from mugcore.data.schema import MODALITIES
from mugcore.errors import UserError


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)[:, None]


def split_reps(y: list[float], h_uni: np.ndarray, h_m: np.ndarray) -> SplitReps:
    n = len(y)
    return SplitReps(h={u: h_uni for u in MODALITIES}, z={u: h_uni for u in MODALITIES},
                     h_m=h_m, pred={u: np.zeros(n, np.float32) for u in MODALITIES},
                     pred_m=np.zeros(n, np.float32), y=np.array(y, np.float32))


def hand_reps() -> CachedReps:
    # Every modality gets the same reps, so each one must come out with the same labels.
    # Train: y_M = [2, 1, 0, -2]; two stage-1 epochs.
    # Epoch 1, fused x = [2, 0, -2, -3], centres from y_M (clip 2, labelled 0, is in neither):
    #   C^p = mean(2, 0) = 1, C^n = -3; D^p = [1, 1, 3, 4], D^n = [5, 3, 1, 0]
    #   alpha_m = (D^n - D^p) / D^p = [4, 2, -2/3, -1]
    # Epoch 1, unimodal x = [3, 1, 1, -1], labels y^(0) = y_M:
    #   C^p = mean(3, 1) = 2, C^n = -1; D^p = [1, 1, 1, 3], D^n = [4, 2, 2, 0]
    #   alpha_s = [3, 1, 1, -1]
    #   y_s = 1/2 y alpha_s / alpha_m + 1/2 (y + alpha_s - alpha_m):
    #   clip 0: 1/2*2*3/4 + 1/2*(2+3-4) = 0.75 + 0.5 = 1.25
    #   clip 1: 1/2*1*1/2 + 1/2*(1+1-2) = 0.25
    #   clip 2: 0 + 1/2*(0+1+2/3) = 5/6
    #   clip 3: 1/2*(-2)(-1)/(-1) + 1/2*(-2-1+1) = -1 - 1 = -2
    #   momentum at i=1: 0 * y^(0) + 1 * y_s -> y^(1) = [1.25, 0.25, 5/6, -2]
    # Epoch 2, fused x = [3, 1, -1, -3]: C^p = 2, C^n = -3; D^p = [1, 1, 3, 5],
    #   D^n = [6, 4, 2, 0]; alpha_m = [5, 3, -1/3, -1]
    # Epoch 2, unimodal x = [2, 2, -1, -3], labels y^(1) (clips 0-2 positive now):
    #   C^p = mean(2, 2, -1) = 1, C^n = -3; D^p = [1, 1, 2, 4], D^n = [5, 5, 2, 0]
    #   alpha_s = [4, 4, 0, -1]
    #   clip 0: 1/2*2*4/5 + 1/2*(2+4-5) = 0.8 + 0.5 = 1.3
    #   clip 1: 1/2*1*4/3 + 1/2*(1+4-3) = 2/3 + 1 = 5/3
    #   clip 2: 0 + 1/2*(0+0+1/3) = 1/6
    #   clip 3: -1 + 1/2*(-2-1+1) = -2
    #   momentum at i=2: y^(2) = 1/3 y^(1) + 2/3 y_s
    #   = [(1.25+2.6)/3, (0.25+10/3)/3, (5/6+1/3)/3, -2] = [3.85/3, 43/36, 7/18, -2]
    snapshots = [
        {"multimodal": col(2, 0, -2, -3), **{u: col(3, 1, 1, -1) for u in MODALITIES}},
        {"multimodal": col(3, 1, -1, -3), **{u: col(2, 2, -1, -3) for u in MODALITIES}},
    ]
    # Final train reps = the epoch-2 snapshot. Final centres: unimodal from the final labels
    # (clips 0-2 positive): C^p = 1, C^n = -3; fused from y_M: C^p = 2, C^n = -3.
    # Valid (and test): y_M = [1, -1], fused x = [1, -2], unimodal x = [0, -2]:
    #   fused: D^p = [1, 4], D^n = [4, 1], alpha_m = [3, -3/4]
    #   unimodal: D^p = [1, 3], D^n = [3, 1], alpha_s = [2, -2/3]
    #   clip A: 1/2*1*2/3 + 1/2*(1+2-3) = 1/3
    #   clip B: 1/2*(-1)(-2/3)/(-3/4) + 1/2*(-1-2/3+3/4) = -4/9 - 11/24 = -65/72
    held_out = split_reps([1, -1], col(0, -2), col(1, -2))
    return CachedReps(
        splits={"train": split_reps([2, 1, 0, -2], col(2, 2, -1, -3), col(3, 1, -1, -3)),
                "valid": held_out, "test": held_out},
        bound=3.0, train_snapshots=snapshots)


def test_hand_worked_example() -> None:
    labels = generate(hand_reps(), bound=3.0, config=UlgmConfig(), seed=0)
    assert set(labels) == set(MODALITIES)
    for u in MODALITIES:
        np.testing.assert_allclose(labels[u]["train"], [3.85 / 3, 43 / 36, 7 / 18, -2],
                                   rtol=0, atol=1e-6)
        for split in ("valid", "test"):
            np.testing.assert_allclose(labels[u][split], [1 / 3, -65 / 72], rtol=0, atol=1e-6)


def test_clipping_to_the_bound() -> None:
    # With H = 1 the same example clips before the momentum update:
    # y^(1) = [1, 0.25, 5/6, -1] (signs unchanged, so epoch 2 centres are as above),
    # epoch-2 rule clipped = [1, 1, 1/6, -1], y^(2) = 1/3 y^(1) + 2/3 y_s = [1, 0.75, 7/18, -1].
    labels = generate(hand_reps(), bound=1.0, config=UlgmConfig(), seed=0)
    np.testing.assert_allclose(labels["audio"]["train"], [1, 0.75, 7 / 18, -1], atol=1e-6)
    assert all(np.abs(v).max() <= 1.0 for per in labels.values() for v in per.values())


def test_squared_distance_option() -> None:
    # x = 3, C^p = 2, C^n = -1: D^p = 1, D^n = 16 squared (4 plain).
    centres = (np.array([2.0]), np.array([-1.0]))
    x = np.array([[3.0]])
    assert relative_distance(x, centres, config=UlgmConfig())[0] == pytest.approx(3.0)
    squared = relative_distance(x, centres, config=UlgmConfig(distance="squared_l2"))
    assert squared[0] == pytest.approx(15.0)


def test_missing_class_and_missing_snapshots_are_clear_errors() -> None:
    reps = hand_reps()
    reps.train_snapshots = []
    with pytest.raises(UserError, match="train_snapshots"):
        generate(reps, bound=3.0, config=UlgmConfig(), seed=0)
    reps = hand_reps()
    reps.splits["train"].y[:] = np.abs(reps.splits["train"].y) + 0.5  # no negative clip
    with pytest.raises(UserError, match="negative"):
        generate(reps, bound=3.0, config=UlgmConfig(), seed=0)
    with pytest.raises(UserError, match="ulgm.distance"):
        UlgmConfig(distance="cosine")  # type: ignore[arg-type]
