"""`labelgen run` end to end on the tiny HDF5 fixture: CSV, label-set HDF5, store, errors."""

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from labelgen.commands import run_command
from labelgen.trust.report import plain_decision
from mugcore.cli import build_parser, run_cli


def run(*argv: str) -> int:
    return run_cli(build_parser("labelgen", "test", [run_command]), ["run", *argv])


def test_copy_to_csv(tiny_mosi_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "labels.csv"
    assert run("--data", str(tiny_mosi_h5), "--method", "copy", "--out", str(out)) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["clip_id", "split", "multimodal", "text", "audio", "vision"]
    assert len(rows) == 80 and {r["split"] for r in rows} == {"train", "valid", "test"}
    assert all(r["text"] == r["multimodal"] == r["vision"] for r in rows)
    printed = capsys.readouterr().out
    assert "copy = the multimodal label used as every uni-label" in printed
    assert "audio: MAE" in printed and "(+0.0%, level)" in printed
    assert "decisions" not in printed  # copy decides nothing


def test_mug_to_h5_with_provenance_and_store(tiny_mosi_h5: Path, tmp_path: Path,
                                             tiny_overrides: list[str],
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "labels.h5"
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    code = run("--data", str(tiny_mosi_h5), "--method", "mug", "--config", "configs/fast.yaml",
               *sets, "--seed", "4", "--out", str(out), "--no-progress",
               "--save-representations", "--store", str(tmp_path / "store"),
               "--dataset", "tiny")
    assert code == 0
    with h5py.File(out, "r") as f:
        meta = json.loads(f.attrs["meta"])
        assert f["text"].shape == (80,) and np.abs(f["audio"][()]).max() <= 3.0
        reps = f["representations"]
        assert reps.attrs["contrastive"] and reps["z_audio"].shape[0] == 80
        assert reps["h_audio"].shape == reps["z_audio"].shape
    assert meta["method"] == "mug" and meta["seed"] == 4
    assert meta["options"]["stage2"]["epochs"] == 2 and "stage1_s" in meta["timings"]
    assert meta["quality"]["train"]["vision"]["copy_mae"] > 0
    # what mug chose, gated and estimated, per modality, printed and in the provenance
    printed = capsys.readouterr().out
    for m in ("text", "audio", "vision"):
        gate = meta["gate"][m]
        assert gate["decision"] in ("correct", "shrink", "copy") and 0 <= gate["shrink"] <= 1
        assert f"{m}: {plain_decision(gate)[0]}" in printed
        candidates = meta["selection"][m]["candidates"]
        assert meta["selection"][m]["noise"] in [c["noise"] for c in candidates]
        assert meta["uncertainty"][m]["mean_width"] > 0
    assert meta["uncertainty"]["level"] == 0.9
    from storage import LabelStore

    with LabelStore.open(tmp_path / "store") as store:
        (label_set,) = store.list_label_sets("tiny")
        assert label_set.method == "mug"
        assert label_set.provenance["gate"] == meta["gate"]
        arrays = store.read_labels(label_set.id)
        assert (arrays["audio_lower"] <= arrays["audio"]).all()


@pytest.mark.parametrize(("argv", "message"), [
    (["--method", "copy", "--out", "x.txt"], "--out must end in .csv"),
    (["--method", "copy"], "give --out FILE, --store DIR_OR_URL, or both"),
    (["--method", "copy", "--no-contrastive", "--out", "x.csv"], "apply to --method mug"),
    (["--method", "mug", "--save-representations", "--out", "x.csv"], "needs --out FILE.h5"),
    (["--method", "copy", "--save-representations", "--out", "x.h5"], "copy has no stage 1"),
    (["--method", "mug", "--set", "stage2.bogus=1", "--out", "x.csv"],
     "unknown option stage2.bogus"),
])
def test_bad_arguments_write_nothing(tiny_mosi_h5: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture, argv: list[str],
                                     message: str) -> None:
    argv = [a if not a.startswith("x.") else str(tmp_path / a) for a in argv]
    assert run("--data", str(tiny_mosi_h5), *argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_ground_truth_without_truth_is_a_clear_error(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    from labelgen.generate import without_truth
    from mugcore.data.io import save_dataset
    from mugcore.data.synth import make_synthetic

    path = tmp_path / "bare.h5"
    save_dataset(without_truth(make_synthetic("sims", n_train=8, n_valid=4, n_test=4, seed=0)),
                 path)
    out = tmp_path / "gt.csv"
    assert run("--data", str(path), "--method", "ground-truth", "--out", str(out)) == 2
    assert "needs per-modality labels" in capsys.readouterr().err
    assert not out.exists()
