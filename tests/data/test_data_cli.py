"""`labelgen import | validate | export`: exit codes, summaries, one-line errors, no leftovers."""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmsa_builders import assert_identical, listing, make_mmsa

from labelgen.cli import COMMANDS
from labelgen.cli import main as labelgen
from mugcore.cli import build_parser
from mugcore.data.hashing import dataset_hash
from mugcore.data.io import load_dataset, save_dataset


def test_import_validate_export_round_trip(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    ds = make_mmsa()
    save_dataset(ds, tmp_path / "in.pkl")
    digest = dataset_hash(ds)
    assert labelgen(["import", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert "train 6, valid 3, test 3" in out and "audio 12x5" in out and "unaligned" in out
    assert "H: 3" in out and digest in out
    assert labelgen(["validate", str(tmp_path / "d.h5")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {tmp_path / 'd.h5'}") and digest in out
    assert labelgen(["export", str(tmp_path / "d.h5"), "--out", str(tmp_path / "out.pkl")]) == 0
    assert digest in capsys.readouterr().out
    assert_identical(ds, load_dataset(tmp_path / "out.pkl"))


def test_validate_lists_problems_and_fails(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    ds = make_mmsa()
    ds.splits["test"]["vision"][1, 0, 0] = np.inf
    ds.splits["valid"]["regression_labels"][0] = 7
    save_dataset(ds, tmp_path / "bad.pkl")
    assert labelgen(["validate", str(tmp_path / "bad.pkl")]) == 2
    lines = capsys.readouterr().err.rstrip().splitlines()
    assert lines == [
        "  valid/regression_labels index 0: label 7 outside [-3, 3]",
        "  test/vision index 1: NaN or inf in features",
        f"labelgen: error: {tmp_path / 'bad.pkl'}: 2 problems, first: valid/regression_labels "
        "index 0: label 7 outside [-3, 3]",
    ]
    assert labelgen(["import", str(tmp_path / "bad.pkl"), "--out", str(tmp_path / "x.h5")]) == 2
    assert listing(tmp_path) == ["bad.pkl"]  # nothing written


def test_import_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = make_mmsa()
    ds.splits["train"]["audio"][2, 3] = -np.inf  # as in MOSEI's audio features
    ds.splits["train"]["regression_labels"][0] = 3.5
    save_dataset(ds, tmp_path / "in.pkl")
    args = ["import", str(tmp_path / "in.pkl"), "--out", str(tmp_path / "d.h5")]
    assert labelgen(args + ["--zero-nonfinite"]) == 2  # label 3.5 is still outside [-3, 3]
    assert "outside [-3, 3]" in capsys.readouterr().err
    assert labelgen(args + ["--zero-nonfinite", "--label-bound", "4"]) == 0
    back = load_dataset(tmp_path / "d.h5")
    assert back.label_bound == 4.0 and back.attrs["nonfinite_features_zeroed"] == 5
    assert back.splits["train"]["audio"][2, 3].tolist() == [0.0] * 5
    assert np.isfinite(back.splits["train"]["audio"]).all()
    capsys.readouterr()
    assert labelgen(args) == 2
    assert "file exists (use --force to overwrite)" in capsys.readouterr().err
    assert labelgen(args + ["--force", "--zero-nonfinite", "--label-bound", "4"]) == 0


@pytest.mark.parametrize(("argv", "needle"), [
    (["import", "{d}/in.pkl", "--out", "{d}/x.pkl"], "--out {d}/x.pkl: expected a .h5 or .hdf5"),
    (["import", "{d}/nope.pkl", "--out", "{d}/x.h5"], "{d}/nope.pkl: no such file"),
    (["import", "{d}/in.pkl", "--out", "{d}/x.h5", "--label-bound", "0"],
     "--label-bound: must be positive"),
    (["validate", "{d}/in.csv"], "unknown dataset file type '.csv'"),
    (["export", "{d}/in.pkl", "--out", "{d}/x.pkl"], "export reads an HDF5 dataset"),
])
def test_bad_arguments_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], needle: str) -> None:
    save_dataset(make_mmsa(), tmp_path / "in.pkl")
    assert labelgen([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle.format(d=tmp_path) in err[0]
    assert listing(tmp_path) == ["in.pkl"]


def test_every_option_has_help() -> None:
    parser = build_parser("labelgen", "", COMMANDS)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("import", "validate", "export"):
        for action in sub.choices[name]._actions:
            assert action.help, (name, action.dest)


def test_console_script_runs(tmp_path: Path) -> None:
    save_dataset(make_mmsa(aligned=True), tmp_path / "a.pkl")
    result = subprocess.run([sys.executable, "-m", "labelgen.cli", "validate",
                             str(tmp_path / "a.pkl")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "(aligned)" in result.stdout
