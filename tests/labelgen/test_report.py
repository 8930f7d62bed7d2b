"""`labelgen report` on real small files: a label CSV, a label-set .h5 and a synthetic dataset."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from labelgen.commands import report_command
from labelgen.reporting.report import (
    HISTOGRAM_FILE,
    QUALITY_FILE,
    SCATTER_FILE,
    TSNE_FILE,
    build_report,
    write_representations,
)
from labelgen.stages.representations import CachedReps, SplitReps
from mugcore.cli import build_parser, run_cli
from mugcore.data.io import save_dataset
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import UserError
from storage.files import encode_label_set

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def clips(ds: MMSADataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    ids = np.concatenate([np.asarray(ds.splits[s]["id"]).astype(str) for s in SPLITS])
    splits = np.concatenate([np.full(ds.size(s), s) for s in SPLITS])
    y = np.concatenate([np.asarray(ds.splits[s]["regression_labels"], np.float64)
                        for s in SPLITS])
    truth = {u: np.concatenate([np.asarray(ds.splits[s][TRUTH_KEYS[u]], np.float64)
                                for s in SPLITS]) for u in MODALITIES}
    return ids, splits, y, truth


def write_csv(path: Path, ids: np.ndarray, splits: np.ndarray, y: np.ndarray,
              labels: dict[str, np.ndarray], order: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "split", "multimodal", *MODALITIES])
        for i in order:
            writer.writerow([ids[i], splits[i], repr(float(y[i])), *(repr(float(labels[u][i]))
                                                              for u in MODALITIES)])


@pytest.fixture(scope="module")
def sims_file(tmp_path_factory: pytest.TempPathFactory, tiny_sims: MMSADataset) -> Path:
    path = tmp_path_factory.mktemp("report") / "tiny_sims.pkl"
    save_dataset(tiny_sims, path)
    return path


def test_csv_against_dataset_truth(tmp_path: Path, tiny_sims: MMSADataset,
                                   sims_file: Path) -> None:
    ids, splits, y, truth = clips(tiny_sims)
    rng = np.random.default_rng(0)
    labels = {u: np.clip(0.5 * y + 0.5 * truth[u] + rng.normal(0, 0.1, len(y)), -1, 1)
              for u in MODALITIES}
    csv_path = tmp_path / "labels.csv"
    # Rows shuffled: the report must match clips by id, not by position.
    write_csv(csv_path, ids, splits, y, labels, rng.permutation(len(ids)))
    out = tmp_path / "out"

    report = build_report(csv_path, out_dir=out, truth=sims_file)

    figures = json.loads((out / QUALITY_FILE).read_text())["labels"]
    assert list(figures) == list(SPLITS)
    for split in SPLITS:
        mask = splits == split
        for u in MODALITIES:
            got = figures[split][u]
            assert got["mae"] == pytest.approx(np.abs(labels[u][mask] - truth[u][mask]).mean())
            assert got["corr"] == pytest.approx(np.corrcoef(labels[u][mask], truth[u][mask])[0, 1])
            assert got["copy_mae"] == pytest.approx(np.abs(y[mask] - truth[u][mask]).mean())
            assert got["copy_corr"] == pytest.approx(np.corrcoef(y[mask], truth[u][mask])[0, 1])
            # The printed table carries the same figures.
            assert f"{got['mae']:.4f}" in report.text and f"{got['copy_corr']:.4f}" in report.text
    for name in (SCATTER_FILE, HISTOGRAM_FILE):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert not (out / TSNE_FILE).exists()
    assert "no t-SNE plot" in report.text


def random_reps(n: dict[str, int]) -> CachedReps:
    rng = np.random.default_rng(1)

    def part(k: int) -> SplitReps:
        h = {u: rng.normal(size=(k, 4)).astype(np.float32) for u in MODALITIES}
        return SplitReps(h=h, z={u: h[u] + 0.5 for u in MODALITIES},
                         h_m=rng.normal(size=(k, 6)).astype(np.float32),
                         pred={u: np.zeros(k, np.float32) for u in MODALITIES},
                         pred_m=np.zeros(k, np.float32), y=np.zeros(k, np.float32))

    return CachedReps(splits={s: part(n[s]) for s in SPLITS}, bound=1.0)


def test_h5_with_representations_compared_without_truth(tmp_path: Path,
                                                         tiny_sims: MMSADataset) -> None:
    import h5py

    ids, splits, y, truth = clips(tiny_sims)
    shifted = {u: np.clip(y + 0.2, -1, 1).astype(np.float32) for u in MODALITIES}
    h5_path = tmp_path / "mug.h5"
    h5_path.write_bytes(encode_label_set(
        {"clip_id": ids, "split": splits, "multimodal": y.astype(np.float32), **shifted},
        {"method": "mug"}))
    with h5py.File(h5_path, "a") as f:
        write_representations(f, random_reps({s: tiny_sims.size(s) for s in SPLITS}),
                              contrastive=True)
    csv_path = tmp_path / "copy.csv"
    write_csv(csv_path, ids, splits, y, {u: y for u in MODALITIES}, np.arange(len(ids))[::-1])
    out = tmp_path / "out"

    report = build_report(h5_path, out_dir=out, compare=[csv_path])

    assert "quality needs ground truth" in report.text
    assert not (out / QUALITY_FILE).exists() and not (out / SCATTER_FILE).exists()
    for name in (HISTOGRAM_FILE, TSNE_FILE):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert report.quality == {}


def test_cli_prints_the_table_and_errors_are_one_line(
        tmp_path: Path, tiny_sims: MMSADataset, sims_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser("labelgen", "test", [report_command])
    ids, splits, y, truth = clips(tiny_sims)
    good = tmp_path / "good.csv"
    write_csv(good, ids, splits, y, truth, np.arange(len(ids)))  # the truth itself: MAE 0
    assert run_cli(parser, ["report", str(good), "--truth", str(sims_file),
                            "--out", str(tmp_path / "ok")]) == 0
    printed = capsys.readouterr().out
    for split in SPLITS:
        for u in MODALITIES:
            assert re.search(rf"^{split}\s+{u}\s+\S+\s+\S+\s+0\.0000\s+1\.0000$", printed, re.M)

    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,split,multimodal,text,audio\nv$_$1,train,0.5,0.1,0.2\n")
    out = tmp_path / "never"
    assert run_cli(parser, ["report", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) vision" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

    bad.write_text("clip_id,split,multimodal,text,audio,vision\nv$_$1,train,0.5,oops,0.1,0.2\n")
    assert run_cli(parser, ["report", str(bad), "--out", str(out)]) == 2
    assert "row 2, column text: 'oops' is not a number" in capsys.readouterr().err
    assert not out.exists()


def test_an_existing_report_folder_needs_force(tmp_path: Path, tiny_sims: MMSADataset,
                                               sims_file: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser("labelgen", "test", [report_command])
    ids, splits, y, truth = clips(tiny_sims)
    labels = tmp_path / "labels.csv"
    write_csv(labels, ids, splits, y, truth, np.arange(len(ids)))
    out = tmp_path / "report"
    out.mkdir()  # an empty folder is fine: nothing to lose
    assert run_cli(parser, ["report", str(labels), "--truth", str(sims_file),
                            "--out", str(out)]) == 0
    first = (out / QUALITY_FILE).read_bytes()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    # Again without --force: refused in one line, the first report untouched.
    assert run_cli(parser, ["report", str(labels), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds files already" in err[0] and "--force" in err[0]
    assert (out / QUALITY_FILE).read_bytes() == first
    # With --force and no truth: the report without quality replaces it, and the stale
    # quality figures and scatter go, while the user's own file stays.
    assert run_cli(parser, ["report", str(labels), "--out", str(out), "--force"]) == 0
    assert not (out / QUALITY_FILE).exists() and not (out / SCATTER_FILE).exists()
    assert (out / HISTOGRAM_FILE).read_bytes()[:8] == PNG_MAGIC
    assert (out / "notes.txt").read_text() == "mine"


def test_truth_from_another_dataset_is_refused(tmp_path: Path, tiny_sims: MMSADataset,
                                               sims_file: Path) -> None:
    ids, splits, y, _ = clips(tiny_sims)
    labels = tmp_path / "labels.csv"
    write_csv(labels, np.char.add(ids, "-other"), splits, y, {u: y for u in MODALITIES},
              np.arange(len(ids)))
    with pytest.raises(UserError, match="not in this dataset"):
        build_report(labels, out_dir=tmp_path / "out", truth=sims_file)
    assert not (tmp_path / "out").exists()


def test_intervals_give_coverage_figures_and_a_plot(tmp_path: Path, tiny_sims: MMSADataset,
                                                    sims_file: Path) -> None:
    ids, splits, y, truth = clips(tiny_sims)
    labels = {u: y.astype(np.float32) for u in MODALITIES}
    # half-width 0 on the even clips, wide enough for the truth on the odd ones
    half = {u: np.where(np.arange(len(y)) % 2 == 0, 0.0, np.abs(truth[u] - y) + 0.01)
            for u in MODALITIES}
    arrays = {"clip_id": ids, "split": splits, "multimodal": y.astype(np.float32), **labels}
    for u in MODALITIES:
        arrays |= {f"{u}_std": half[u].astype(np.float32),
                   f"{u}_lower": (y - half[u]).astype(np.float32),
                   f"{u}_upper": (y + half[u]).astype(np.float32)}
    path = tmp_path / "with_intervals.h5"
    path.write_bytes(encode_label_set(arrays, {"uncertainty": {"level": 0.9}}))
    report = build_report(path, out_dir=tmp_path / "out", truth=sims_file)
    assert (tmp_path / "out" / "uncertainty.png").read_bytes()[:8] == PNG_MAGIC
    even = np.arange(len(y)) % 2 == 0
    for split in SPLITS:
        rows = splits == split
        # odd clips always cover the truth; even ones only where truth equals y exactly
        inside = ~even[rows] | np.isclose(truth["audio"][rows], y[rows])
        match = re.search(rf"{split}\s+audio: coverage ([0-9.]+)", report.text)
        assert match and float(match.group(1)) == pytest.approx(inside.mean(), abs=1e-3)
    assert "nominal coverage 90%" in report.text
