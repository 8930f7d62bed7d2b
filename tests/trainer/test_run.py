"""`trainer run` and `trainer eval` against a local store, on tiny real training runs."""

import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mugcore.data.io import save_dataset
from mugcore.data.schema import MODALITIES, MMSADataset
from mugcore.errors import UserError
from mugcore.models.multimodal_net import MultimodalNet, NetConfig
from tests.trainer.conftest import DATASET, TINY
from trainer.cli import main
from trainer.label_source import UniLabels, align_targets

MOSI_METRICS = {"Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5",
                "Mult_acc_7", "MAE", "Corr"}


def run(store: Path, out: Path, *extra: str) -> int:
    return main(["run", "--store", str(store), "--dataset", DATASET, *TINY, *extra,
                 "--out", str(out)])


@pytest.fixture(scope="module")
def baseline(store_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    assert run(store_dir, out) == 0
    return out


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_run_writes_metrics_checkpoint_report_and_curves(baseline: Path) -> None:
    m = metrics(baseline)
    assert set(m["test"]) == {"mean", "std"}
    assert set(m["test"]["mean"]) == MOSI_METRICS  # MOSI family from label bound 3
    assert m["metrics_family"] == "mosi"
    assert all(math.isfinite(v) for v in m["test"]["mean"].values())
    assert all(v == 0 for v in m["test"]["std"].values())  # one seed
    (seed_run,) = m["per_seed"]
    assert seed_run["seed"] == 1 and 1 <= seed_run["best_epoch"] <= 3
    assert seed_run["test"]["MAE"] == pytest.approx(m["test"]["mean"]["MAE"])
    assert len(m["histories"]["1"]) == 3
    # the checkpoint kept is the epoch with the lowest validation MAE
    valid_maes = [h["valid_MAE"] for h in m["histories"]["1"]]
    assert seed_run["best_epoch"] == int(np.argmin(valid_maes)) + 1
    assert seed_run["valid"]["MAE"] == pytest.approx(min(valid_maes), abs=1e-6)
    assert m["label_set"]["method"] == "copy"
    assert m["dataset"]["synthetic"] is True
    # copy uni-labels score exactly what the copy baseline scores
    for q in m["unilabel_quality"].values():
        assert q["mae"] == pytest.approx(q["copy_mae"])
    assert (baseline / "best.pt").is_file()
    assert (baseline / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (baseline / "report.md").read_text()
    assert "SYNTHETIC" in report and "| 1 |" in report


def test_eval_reproduces_the_run_test_metrics(baseline: Path, tiny_mosi_h5: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(baseline / "best.pt"), "--data", str(tiny_mosi_h5),
                 "--split", "all", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"train", "valid", "test"}
    expected = metrics(baseline)["per_seed"][0]["test"]
    for name, value in expected.items():
        assert result["test"][name] == pytest.approx(value, abs=1e-6), name


def test_resume_continues_to_the_same_result(store_dir: Path, baseline: Path,
                                             tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert run(store_dir, out, "--set", "epochs=2") == 0
    assert len(metrics(out)["histories"]["1"]) == 2
    capsys.readouterr()
    assert run(store_dir, out, "--resume") == 0  # epochs=3 from TINY
    # It says where training picks up.
    assert ("--resume: seed 1: continuing at epoch 3 of 3 (epochs 1-2 from last.pt)"
            in capsys.readouterr().err)
    resumed, fresh = metrics(out), metrics(baseline)
    assert [h["epoch"] for h in resumed["histories"]["1"]] == [1, 2, 3]
    for a, b in zip(resumed["histories"]["1"], fresh["histories"]["1"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
    assert resumed["test"]["mean"]["MAE"] == pytest.approx(fresh["test"]["mean"]["MAE"], abs=1e-6)


def test_interrupt_says_how_to_resume(store_dir: Path, tmp_path: Path) -> None:
    """Ctrl-C in a real `trainer run` process: exit 130 and a line naming --resume."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer.cli", "run", "--store", str(store_dir), "--dataset",
         DATASET, *TINY, "--set", "epochs=100000", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180  # torch starts slowly on a loaded machine
        while not (out / "seed_1" / "last.pt").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.poll()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        err = process.communicate(timeout=60)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "interrupted" in err and "rerun with --resume to continue" in err, err


def test_resume_refuses_other_settings(store_dir: Path, baseline: Path, capsys) -> None:
    assert run(store_dir, baseline, "--resume", "--set", "lr=0.5") == 2
    assert "other settings of ['lr']" in capsys.readouterr().err


def test_beta_zero_trains_no_unimodal_head(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(store_dir, out, "--beta", "0") == 0
    m = metrics(out)
    assert m["config"]["beta"] == 0
    assert m["label_set"]["method"].startswith("none")
    ckpt = torch.load(out / "best.pt", weights_only=True)
    torch.manual_seed(1)  # the recipe seeds before building the net
    fresh = MultimodalNet(config=NetConfig(**ckpt["net_config"])).state_dict()
    for key, value in ckpt["model"].items():
        if key.startswith(tuple(f"predictors.{u}." for u in MODALITIES)):
            assert torch.equal(value, fresh[key]), f"{key} changed with beta 0"
    moved = [k for k in ckpt["model"] if k.startswith("predictors.multimodal.")
             and not torch.equal(ckpt["model"][k], fresh[k])]
    assert moved, "the multimodal head did not train"


def test_data_file_with_other_clip_ids_is_refused(store_dir: Path, tiny_mosi: MMSADataset,
                                                  tmp_path: Path, capsys) -> None:
    splits = {s: dict(v) for s, v in tiny_mosi.splits.items()}
    ids = np.asarray(splits["test"]["id"]).astype(str).copy()
    ids[:3] = ["other$_$1", "other$_$2", "other$_$3"]
    splits["test"]["id"] = ids
    path = tmp_path / "renamed.h5"
    save_dataset(MMSADataset(splits=splits, attrs=dict(tiny_mosi.attrs)), path)
    out = tmp_path / "out"
    assert run(store_dir, out, "--data", str(path)) == 2
    err = capsys.readouterr().err
    assert "test: 3 clips missing" in err
    for missing in np.asarray(tiny_mosi.splits["test"]["id"]).astype(str)[:3]:
        assert missing in err
    assert not out.exists()  # nothing half-written


def test_data_file_with_the_same_clips_is_used(store_dir: Path, tiny_mosi_pkl: Path,
                                               baseline: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(store_dir, out, "--data", str(tiny_mosi_pkl), "--set", "epochs=1") == 0
    assert metrics(out)["histories"]["1"][0]["train_loss"] == pytest.approx(
        metrics(baseline)["histories"]["1"][0]["train_loss"], abs=1e-6)


def test_ground_truth_labels_align_and_missing_uni_labels_are_listed(
        tiny_mosi: MMSADataset, tiny_sims: MMSADataset) -> None:
    truth = UniLabels.ground_truth(tiny_mosi)
    targets = align_targets(tiny_mosi, truth, "valid")
    assert np.array_equal(targets["audio"], tiny_mosi.splits["valid"]["regression_labels_A"])
    partial = UniLabels(clip_id=truth.clip_id[1:], split=truth.split[1:],
                        multimodal=truth.multimodal[1:],
                        per_modality={m: v[1:] for m, v in truth.per_modality.items()},
                        info={"id": 7})
    first = str(np.asarray(tiny_mosi.splits["train"]["id"])[0])
    with pytest.raises(UserError, match=f"label set 7: 1 of 48 train clips .*{re.escape(first)}"):
        align_targets(tiny_mosi, partial, "train")


def test_unknown_label_set_and_bad_config_are_one_line_errors(store_dir: Path, tmp_path: Path,
                                                              capsys) -> None:
    assert run(store_dir, tmp_path / "a", "--label-set", "99") == 2
    assert "99" in capsys.readouterr().err
    assert run(store_dir, tmp_path / "b", "--set", "bogus=1") == 2
    assert "unknown config field 'bogus'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
