"""Corrections that can point either way (labelgen/trust/consistency.py) on a world whose
answer is known: y_M mixes a loud text with a muted audio and vision."""

import numpy as np
import pytest

from labelgen.config import load_config
from labelgen.generate import generate_labels
from labelgen.trust.consistency import make_consistent
from mugcore.data.schema import MODALITIES, MMSADataset

WEIGHTS = {"text": 0.5, "audio": 0.25, "vision": 0.25}
N_TRAIN, N_VALID, N_TEST = 600, 200, 200


def _world(seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """y_M, the true uni-labels and MUCN-like labels that shrink every modality toward zero:
    right for audio and vision, wrong for the text, which is more extreme than y_M."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_VALID + N_TEST
    shared = rng.normal(0, 1, n)
    truth = {"text": 1.4 * shared + 0.2 * rng.normal(0, 1, n),
             "audio": 0.6 * shared + 0.4 * rng.normal(0, 1, n),
             "vision": 0.6 * shared + 0.4 * rng.normal(0, 1, n)}
    y = sum(WEIGHTS[m] * truth[m] for m in MODALITIES) + 0.1 * rng.normal(0, 1, n)
    shrunk = {m: 0.7 * y + 0.3 * (0.6 * truth[m] if m != "text" else 0.5 * y)
              for m in MODALITIES}
    return y, truth, shrunk


def _mae(labels: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(labels[:N_TRAIN] - truth[:N_TRAIN]).mean())


def test_a_dominant_modality_moves_outward_and_gets_closer_to_its_truth() -> None:
    y, truth, shrunk = _world()
    keep = {m: 1.0 for m in MODALITIES}
    out, info = make_consistent(shrunk, y, weights=WEIGHTS, keep=keep, n_train=N_TRAIN,
                                n_valid=N_VALID, bound=10.0)
    assert info.direction["text"]["mucn_slope"] < 0 < info.direction["text"]["final_slope"]
    assert _mae(out["text"], truth["text"]) < 0.8 * _mae(shrunk["text"], truth["text"])
    # the constraint holds on average: the mix of the labels reproduces y_M's slope
    mix = sum(WEIGHTS[m] * out[m] for m in MODALITIES)
    assert np.polyfit(y, mix, 1)[0] == pytest.approx(1.0, abs=0.02)
    assert info.strength == 1.0


def test_a_modality_the_gate_sent_to_copy_stays_at_y_m() -> None:
    y, _, shrunk = _world()
    labels = {**shrunk, "vision": y.astype(np.float32)}
    keep = {"text": 1.0, "audio": 1.0, "vision": 0.0}
    out, _ = make_consistent(labels, y, weights=WEIGHTS, keep=keep, n_train=N_TRAIN,
                             n_valid=N_VALID, bound=10.0)
    np.testing.assert_allclose(out["vision"], y, atol=1e-5)


def test_a_direction_the_validation_clips_contradict_is_not_applied() -> None:
    y, _, shrunk = _world()
    valid = slice(N_TRAIN, N_TRAIN + N_VALID)
    flipped = {m: shrunk[m].copy() for m in MODALITIES}
    for m in MODALITIES:  # on validation clips the labels now lie outside y_M, not inside
        flipped[m][valid] = y[valid] + (y[valid] - shrunk[m][valid])
    keep = {m: 1.0 for m in MODALITIES}
    out, info = make_consistent(flipped, y, weights=WEIGHTS, keep=keep, n_train=N_TRAIN,
                                n_valid=N_VALID, bound=10.0)
    assert info.slope_valid < 0 < info.slope_train
    assert info.strength == 0.0
    for m in MODALITIES:
        np.testing.assert_allclose(out[m], flipped[m], atol=1e-5)


def test_mug_records_the_consistency_and_mucn_mode_keeps_the_papers_labels(
        tiny_mosi: MMSADataset, tiny_overrides: list[str]) -> None:
    consistent = generate_labels(tiny_mosi, method="mug", seed=3,
                                 config=load_config(preset="fast", overrides=tiny_overrides))
    mucn = generate_labels(tiny_mosi, method="mug", seed=3, config=load_config(
        preset="fast", overrides=[*tiny_overrides, "correction.mode=mucn"]))
    info = consistent.provenance["consistency"]
    assert set(info["weights"]) == set(MODALITIES)
    assert sum(info["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= info["strength"] <= 1.0
    assert mucn.provenance["consistency"]["mode"] == "mucn"
    labels = consistent.labels
    for m in MODALITIES:
        lower, upper = labels[f"{m}_lower"], labels[f"{m}_upper"]
        assert np.all(lower <= labels[m] + 1e-6) and np.all(labels[m] <= upper + 1e-6)
