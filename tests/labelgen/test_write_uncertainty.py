"""`labelgen run --out`: per-clip uncertainty columns in the CSV and arrays in the HDF5 file.

The uncertainty values are MADE UP by the test (storage.testing.seeded_uncertainty); only the
writing is under test here."""

import csv
from pathlib import Path

import numpy as np
import pytest

from labelgen.commands.run_command import COLUMNS, UNCERTAINTY_COLUMNS, write_labels
from labelgen.generate import LabelResult
from storage.files import read_label_file
from storage.testing import seeded_uncertainty, seeded_unilabels
from storage.uncertainty import UNCERTAINTY_KEYS


def _result(n: int, *, uncertainty: bool) -> LabelResult:
    unilabels = seeded_unilabels(n, seed=5)
    labels = {"clip_id": np.array([f"v{i}$_$0" for i in range(n)]),
              "split": np.array(["train"] * (n - 2) + ["test"] * 2),
              "multimodal": np.linspace(-3, 3, n).astype(np.float32), **unilabels}
    if uncertainty:
        labels.update(seeded_uncertainty(unilabels, seed=6))
    return LabelResult(labels=labels, provenance={"method": "made-up"}, quality=None)


def test_csv_has_the_uncertainty_columns_in_the_documented_order(tmp_path: Path) -> None:
    result = _result(6, uncertainty=True)
    out = tmp_path / "labels.csv"
    write_labels(result, out)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        *COLUMNS, "text_std", "audio_std", "vision_std", "text_lower", "text_upper",
        "audio_lower", "audio_upper", "vision_lower", "vision_upper"]
    assert len(rows) == 6
    for column in UNCERTAINTY_COLUMNS:
        got = np.array([float(r[column]) for r in rows], dtype=np.float32)
        np.testing.assert_array_equal(got, result.labels[column])


def test_csv_without_uncertainty_keeps_the_six_columns(tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    write_labels(_result(4, uncertainty=False), out)
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_h5_carries_the_uncertainty_arrays(tmp_path: Path) -> None:
    result = _result(5, uncertainty=True)
    out = tmp_path / "labels.h5"
    write_labels(result, out)
    back = read_label_file(out)
    for key in UNCERTAINTY_KEYS:
        np.testing.assert_array_equal(back[key], result.labels[key])


def test_partial_uncertainty_is_refused_and_nothing_written(tmp_path: Path) -> None:
    from mugcore.errors import UserError

    result = _result(4, uncertainty=True)
    del result.labels["audio_upper"]
    out = tmp_path / "labels.csv"
    with pytest.raises(UserError, match="labels/audio_upper: missing"):
        write_labels(result, out)
    assert list(tmp_path.iterdir()) == []
