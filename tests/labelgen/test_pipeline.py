"""Stage 1, generate_labels and the methods on the tiny synthetic datasets."""

import numpy as np
import pytest

from labelgen.config import LabelgenConfig, load_config
from labelgen.generate import Cancelled, generate_labels, without_truth
from labelgen.stages.stage1 import fold_of_train_clips, run_stage1
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import UserError


def test_stage1_caches_every_split_and_snapshots(tiny_mosi: MMSADataset,
                                                 tiny_config: LabelgenConfig) -> None:
    reps = run_stage1(tiny_mosi, tiny_config.stage1, seed=0, snapshots=True)
    for split in SPLITS:
        r = reps.splits[split]
        n = tiny_mosi.size(split)
        for u in MODALITIES:
            assert r.h[u].shape == (n, 8) and r.z[u].shape == (n, 8) and r.pred[u].shape == (n,)
            assert np.isfinite(r.h[u]).all() and np.isfinite(r.z[u]).all()
        assert r.h_m.shape == (n, 8)
        np.testing.assert_array_equal(r.y, tiny_mosi.splits[split]["regression_labels"])
    (run,) = reps.info["runs"]
    assert len(reps.train_snapshots) == run["epochs"] >= 1
    assert reps.train_snapshots[0]["multimodal"].shape == (48, 8)
    assert reps.info["seconds_per_iteration"] > 0


def test_cross_fitting_keeps_videos_whole_and_trains_k_models(
        tiny_mosi: MMSADataset, tiny_overrides: list[str]) -> None:
    config = load_config(preset="fast", overrides=[*tiny_overrides, "stage1.cross_fit_folds=2",
                                                   "stage1.max_epochs=1"])
    folds = fold_of_train_clips(tiny_mosi, config.stage1, seed=0)
    videos = np.array([i.split("$_$")[0] for i in tiny_mosi.splits["train"]["id"]])
    for video in set(videos):
        assert len(set(folds[videos == video])) == 1
    assert set(folds) == {0, 1}
    reps = run_stage1(tiny_mosi, config.stage1, seed=0, snapshots=True)
    assert len(reps.info["runs"]) == 2
    assert all(np.isfinite(reps.splits[s].h[u]).all() for s in SPLITS for u in MODALITIES)
    assert len(reps.train_snapshots) == 1
    too_many = load_config(overrides=["stage1.cross_fit_folds=20"])
    with pytest.raises(UserError, match="cross_fit_folds=20 needs at least 20 train videos"):
        fold_of_train_clips(tiny_mosi, too_many.stage1, seed=0)


def test_bert_stage1_step(tiny_mosi: MMSADataset, tiny_overrides: list[str]) -> None:
    config = load_config(preset="mosi", overrides=[
        *tiny_overrides, "stage1.net.text_encoder=bert", "stage1.max_iterations=1",
        "stage1.max_epochs=1"])
    reps = run_stage1(tiny_mosi, config.stage1, seed=0)
    assert reps.info["runs"][0]["iterations"] == 1
    assert np.isfinite(reps.splits["test"].h["text"]).all()


def _scrambled_truth(ds: MMSADataset) -> MMSADataset:
    rng = np.random.default_rng(7)
    splits = {s: {**split, **{k: rng.uniform(-3, 3, len(split[k])).astype(np.float32)
                              for k in TRUTH_KEYS.values()}} for s, split in ds.splits.items()}
    return MMSADataset(splits=splits, attrs=ds.attrs)


def test_mug_is_deterministic_and_never_reads_ground_truth(
        tiny_mosi: MMSADataset, tiny_config: LabelgenConfig) -> None:
    first = generate_labels(tiny_mosi, method="mug", config=tiny_config, seed=1)
    again = generate_labels(tiny_mosi, method="mug", config=tiny_config, seed=1)
    scrambled = generate_labels(_scrambled_truth(tiny_mosi), method="mug", config=tiny_config,
                                seed=1)
    bare = generate_labels(without_truth(tiny_mosi), method="mug", config=tiny_config, seed=1)
    for m in MODALITIES:
        labels = first.labels[m]
        assert labels.shape == (80,) and np.isfinite(labels).all()
        assert np.abs(labels).max() <= 3.0
        for other in (again, scrambled, bare):
            np.testing.assert_array_equal(labels, other.labels[m])
    assert list(first.labels["split"][:48]) == ["train"] * 48
    assert first.quality is not None and bare.quality is None
    assert set(first.quality["train"]["audio"]) == {"mae", "corr", "copy_mae", "copy_corr"}
    # the scrambled truth changes the quality figures, not the labels
    assert scrambled.quality["train"]["text"]["mae"] != first.quality["train"]["text"]["mae"]
    p = first.provenance
    assert p["method"] == "mug" and p["seed"] == 1 and len(p["dataset_hash"]) == 64
    assert p["options"]["stage2"]["noise_audio"] == 0.3
    assert {"stage1_s", "stage2_s", "total_s"} <= set(p["timings"])
    assert "torch" in p["versions"]


def test_spread_weight_shares_out_each_modalitys_width(
        tiny_mosi: MMSADataset, tiny_overrides: list[str]) -> None:
    def run(weight: float) -> dict[str, np.ndarray]:
        config = load_config(preset="fast", overrides=[
            *tiny_overrides, f"uncertainty.spread_weight_text={weight}"])
        return generate_labels(tiny_mosi, method="mug", config=config, seed=1).labels

    flat, steep = run(0.0), run(50.0)
    for m in MODALITIES:
        np.testing.assert_array_equal(flat[m], steep[m])  # the labels do not move
    np.testing.assert_array_equal(flat["audio_std"], steep["audio_std"])
    # without the spread the text scale is 0.5 + |label| / H: std follows |label| exactly
    rank = np.argsort(np.abs(flat["text"]), kind="stable")
    assert (np.diff(flat["text_std"][rank]) >= -1e-6).all()
    assert not (np.diff(steep["text_std"][rank]) >= -1e-6).all()


def test_progress_and_cancel(tiny_mosi: MMSADataset, tiny_config: LabelgenConfig) -> None:
    calls: list[tuple[str, float]] = []
    generate_labels(tiny_mosi, method="mug", config=tiny_config, seed=0,
                    progress=lambda stage, f, eta: calls.append((stage, f)))
    # "stage1 epoch 1/2", ..., "stage2 epoch 1/2", ...: stage 1 first; the fraction is the
    # whole call's (labelgen/progress.py), ending at 1
    stages = [s.split(" ")[0] for s, _ in calls]
    assert stages == sorted(stages) and set(stages) == {"stage1", "stage2"}
    assert calls[0][1] == 0.0 and calls[-1][1] == 1.0
    assert all(0.0 <= f <= 1.0 for _, f in calls)
    ticks = iter(range(1000))
    with pytest.raises(Cancelled, match="stage1"):
        generate_labels(tiny_mosi, method="mug", config=tiny_config, seed=0,
                        should_stop=lambda: next(ticks) >= 3)


def test_copy_and_ground_truth(tiny_sims: MMSADataset) -> None:
    copy = generate_labels(tiny_sims, method="copy", seed=0)
    truth = generate_labels(tiny_sims, method="ground-truth", seed=0)
    y = np.concatenate([tiny_sims.splits[s]["regression_labels"] for s in SPLITS])
    for m in MODALITIES:
        np.testing.assert_array_equal(copy.labels[m], y)
        expected = np.concatenate([tiny_sims.splits[s][TRUTH_KEYS[m]] for s in SPLITS])
        np.testing.assert_array_equal(truth.labels[m], expected.astype(np.float32))
        assert truth.quality["valid"][m]["mae"] == 0.0
    assert copy.provenance["options"]["preset"] == "sims-cpu"  # from the dataset; no GPU
    with pytest.raises(UserError, match="ground-truth needs per-modality labels.*train/"):
        generate_labels(without_truth(tiny_sims), method="ground-truth", seed=0)
    with pytest.raises(UserError, match="unknown method 'magic'"):
        generate_labels(tiny_sims, method="magic", seed=0)
