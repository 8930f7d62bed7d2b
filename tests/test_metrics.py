"""Hand-worked cases for the standard MSA metrics (DESIGN section 5)."""

import math

import numpy as np
import pytest

from mugcore.metrics import (
    f1_score,
    metrics_for_bound,
    mosi_metrics,
    sims_bins,
    sims_metrics,
    unilabel_quality,
)


def test_has0_and_non0_treat_zero_differently() -> None:
    truth = [0.0, 1.0, -1.0, 2.0]
    pred = [-0.5, 0.5, 0.0, 1.0]
    m = mosi_metrics(pred, truth)
    # Has0: truth 0 is positive, pred 0 is positive -> clips 0 and 2 are wrong.
    assert m["Has0_acc_2"] == pytest.approx(0.5)
    # Class 1: tp=2 fp=1 fn=1 -> F1 2/3 (support 3); class 0: F1 0 (support 1).
    assert m["Has0_F1_score"] == pytest.approx(0.5)
    # Non0: the truth-0 clip is dropped; pred 0 counts as "not positive", truth -1 too.
    assert m["Non0_acc_2"] == pytest.approx(1.0)
    assert m["Non0_F1_score"] == pytest.approx(1.0)


def test_weighted_f1_hand_computed() -> None:
    truth = [1.0, 2.0, 3.0, 0.5, -1.0, -2.0]  # positive x4, negative x2
    pred = [1.0, 1.0, 1.0, 1.0, 1.0, -1.0]  # one negative predicted positive
    m = mosi_metrics(pred, truth)
    # positive: tp=4 fp=1 fn=0 -> F1 8/9; negative: tp=1 fp=0 fn=1 -> F1 2/3.
    expected = (4 * 8 / 9 + 2 * 2 / 3) / 6
    assert m["Non0_F1_score"] == pytest.approx(expected)
    assert m["Non0_acc_2"] == pytest.approx(5 / 6)
    assert m["Has0_F1_score"] == pytest.approx(expected)


def test_rounding_is_half_to_even() -> None:
    # Half-away-from-zero would give 1, 2, -3 and miss two of the three.
    m = mosi_metrics([0.5, 1.5, -2.5], [0.0, 2.0, -2.0])
    assert m["Mult_acc_7"] == 1.0
    assert m["Mult_acc_5"] == 1.0


def test_mult_acc_clipping_and_unclipped_mae() -> None:
    # 2.6 rounds to 3 (7-class miss) but clips to 2 for the 5-class metric (hit);
    # 4.0 vs 3.0 is a hit in both after clipping, yet MAE sees the unclipped error.
    m = mosi_metrics([2.6, 4.0], [2.0, 3.0])
    assert m["Mult_acc_7"] == pytest.approx(0.5)
    assert m["Mult_acc_5"] == pytest.approx(1.0)
    assert m["MAE"] == pytest.approx((0.6 + 1.0) / 2)


def test_corr_matches_numpy_and_constant_gives_zero() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    p = y + rng.normal(size=50)
    assert mosi_metrics(p, y)["Corr"] == pytest.approx(np.corrcoef(p, y)[0, 1])
    assert mosi_metrics(np.full(50, 0.3), y)["Corr"] == 0.0
    assert sims_metrics(np.full(50, 0.3), np.clip(y, -1, 1))["Corr"] == 0.0


def test_non0_undefined_when_all_truths_zero() -> None:
    m = mosi_metrics([0.2, -0.1], [0.0, 0.0])
    assert math.isnan(m["Non0_acc_2"]) and math.isnan(m["Non0_F1_score"])
    assert m["Has0_acc_2"] == pytest.approx(0.5)


def test_sims_bin_edges() -> None:
    x = np.array([-1.0, -0.7, -0.69, -0.1, -0.09, 0.0, 0.1, 0.11, 0.7, 0.71, 1.0])
    assert sims_bins(x, 5).tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    assert sims_bins(x, 3).tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert sims_bins(x, 2).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


def test_sims_metrics_hand_case() -> None:
    pred = [-0.1, 0.1, 0.7, 0.0, 1.5]
    truth = [-0.2, 0.05, 0.75, 0.01, 1.0]
    m = sims_metrics(pred, truth)
    # 2-class: pred [0,1,1,0,1], truth [0,1,1,1,1] -> 4/5.
    assert m["Mult_acc_2"] == pytest.approx(4 / 5)
    # 3-class: pred [0,1,2,1,2], truth [0,1,2,1,2].
    assert m["Mult_acc_3"] == pytest.approx(1.0)
    # 5-class: pred [1,2,3,2,4], truth [1,2,4,2,4].
    assert m["Mult_acc_5"] == pytest.approx(4 / 5)
    # F1 on 2 classes: class 1 tp=3 fp=0 fn=1 -> 6/7 (support 4); class 0 tp=1 fp=1 -> 2/3.
    assert m["F1_score"] == pytest.approx((4 * 6 / 7 + 1 * 2 / 3) / 5)
    # 1.5 is clipped to 1 before MAE.
    assert m["MAE"] == pytest.approx((0.1 + 0.05 + 0.05 + 0.01 + 0.0) / 5)


def test_metrics_for_bound() -> None:
    assert metrics_for_bound(3.0) is mosi_metrics
    assert metrics_for_bound(1.0) is sims_metrics


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="3 values but truth has 2"):
        mosi_metrics([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        sims_metrics([np.nan], [0.0])


def test_unilabel_quality() -> None:
    labels = {"text": [1.0, 2.0, 3.0], "audio": [0.0, 0.0, 0.0]}
    truth = {"text": [1.0, 2.0, 4.0], "audio": [1.0, -1.0, 0.0], "vision": [0.0, 0.0, 1.0]}
    y_m = [0.0, 0.0, 1.0]
    q = unilabel_quality(labels, truth, y_m)
    assert set(q) == {"text", "audio"}
    assert q["text"]["mae"] == pytest.approx(1 / 3)
    assert q["text"]["corr"] == pytest.approx(np.corrcoef([1, 2, 3], [1, 2, 4])[0, 1])
    assert q["text"]["copy_mae"] == pytest.approx(2.0)
    assert q["text"]["copy_corr"] == pytest.approx(np.corrcoef(y_m, [1, 2, 4])[0, 1])
    assert q["audio"]["mae"] == pytest.approx(2 / 3)
    assert q["audio"]["corr"] == 0.0
    with pytest.raises(ValueError, match="vision"):
        unilabel_quality({"vision": [1.0]}, {"text": [1.0]}, [1.0])


@pytest.mark.parametrize("seed", range(6))
def test_weighted_f1_equals_sklearn(seed: int) -> None:
    from sklearn.metrics import f1_score as sklearn_f1

    rng = np.random.default_rng(seed)
    n_classes = [2, 2, 3, 5, 2, 3][seed]
    y = rng.integers(0, n_classes, 40)
    p = np.where(rng.random(40) < 0.6, y, rng.integers(0, n_classes, 40))
    if seed == 4:
        p[:] = 1  # one class never predicted
    if seed == 5:
        y[:] = 2  # the truth has one class, the predictions three
    want = sklearn_f1(y, p, average="weighted", zero_division=0)
    assert f1_score(y, p) == pytest.approx(want, abs=1e-12)
    assert f1_score(y > 0, p > 0) == pytest.approx(
        sklearn_f1(y > 0, p > 0, average="weighted", zero_division=0), abs=1e-12)

