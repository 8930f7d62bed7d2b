"""`trainer run --weight-by-uncertainty`: weights from the label set's per-clip std."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from labelgen.methods import all_clips
from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset
from storage import LabelStore
from storage.testing import seeded_uncertainty
from tests.trainer.conftest import DATASET, TINY
from trainer.cli import main
from trainer.label_source import UniLabels, uncertainty_weights


def test_weights_fall_with_std_keep_mean_one_and_follow_clip_order(
        tiny_mosi: MMSADataset) -> None:
    ids, splits = all_clips(tiny_mosi)
    n = len(ids)
    std = np.linspace(0.1, 1.0, n).astype(np.float32)
    order = np.random.default_rng(0).permutation(n)  # label-set rows in another order
    labels = UniLabels(clip_id=ids[order], split=splits[order],
                       multimodal=np.zeros(n, np.float32),
                       per_modality={m: np.zeros(n, np.float32) for m in MODALITIES},
                       std={m: std[order] for m in MODALITIES}, info={"id": 7})
    w = uncertainty_weights(tiny_mosi, labels, "train")
    n_train = tiny_mosi.size("train")
    for m in MODALITIES:
        assert w[m].shape == (n_train,) and w[m].mean() == pytest.approx(1.0, rel=1e-5)
        assert np.all(np.diff(w[m]) < 0)  # train clips come first with rising std
        median = np.median(std[:n_train])
        at_median = 0.5 / np.mean(1 / (1 + (std[:n_train] / median) ** 2))
        assert np.interp(median, std[:n_train], w[m]) == pytest.approx(at_median, rel=1e-3)


@pytest.fixture(scope="module")
def store_with_uncertainty(store_dir: Path, tiny_mosi: MMSADataset,
                           tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("weighted") / "store"
    shutil.copytree(store_dir, path)
    ids, splits = all_clips(tiny_mosi)
    y = np.concatenate([np.asarray(tiny_mosi.splits[s]["regression_labels"]) for s in SPLITS])
    rng = np.random.default_rng(3)
    uni = {m: np.clip(y + rng.normal(0, 0.3, len(y)), -3, 3).astype(np.float32)
           for m in MODALITIES}
    labels = {"clip_id": ids, "split": splits, "multimodal": y, **uni,
              **seeded_uncertainty(uni, seed=5)}
    with LabelStore.open(path) as store:
        label_set = store.publish_label_set(DATASET, labels, method="mug", options={}, seed=0)
    return path, label_set.id


def run(store: Path, out: Path, *extra: str) -> int:
    return main(["run", "--store", str(store), "--dataset", DATASET, *TINY, *extra,
                 "--out", str(out)])


def test_weighted_run_trains_and_differs_from_unweighted(
        store_with_uncertainty: tuple[Path, int], tmp_path: Path) -> None:
    store, label_set = store_with_uncertainty
    plain, weighted = tmp_path / "plain", tmp_path / "weighted"
    assert run(store, plain, "--label-set", str(label_set)) == 0
    assert run(store, weighted, "--label-set", str(label_set), "--weight-by-uncertainty") == 0
    first = json.loads((plain / "metrics.json").read_text())
    second = json.loads((weighted / "metrics.json").read_text())
    assert second["config"]["weight_by_uncertainty"] is True
    losses = [[h["train_loss"] for h in m["histories"]["1"]] for m in (first, second)]
    assert np.all(np.isfinite(losses)) and losses[0] != losses[1]


def test_weighting_a_set_without_uncertainty_is_a_one_line_error(
        store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert run(store_dir, out, "--weight-by-uncertainty") == 2  # the copy label set
    err = capsys.readouterr().err.strip()
    assert "carries no per-clip uncertainty" in err and len(err.splitlines()) == 1
    assert not out.exists()
