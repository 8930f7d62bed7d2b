"""`labelgen export` with a label set: the uni-labels land in MMSA's per-modality keys, the
rest stays as imported, and `labelgen import` of the result gives back the same features and
labels. Real store, real files, the CLI as a user runs it."""

import json
from pathlib import Path

import numpy as np
import pytest

from labelgen.cli import main as labelgen
from mugcore.data.hashing import dataset_hash
from mugcore.data.io import load_dataset
from mugcore.data.schema import MODALITIES, TRUTH_KEYS
from mugcore.data.validate import check_dataset
from storage import LabelStore
from tests.interop.conftest import DATASET, label_set_ids, write_csv

CLASS_KEYS = ("classification_labels_T", "classification_labels_A", "classification_labels_V")
PER_MODALITY = set(TRUTH_KEYS.values()) | set(CLASS_KEYS)


def _export(store_dir: Path, out: Path, label_set: str, *extra: str) -> int:
    return labelgen(["export", "--store", str(store_dir), "--dataset", DATASET,
                     "--label-set", label_set, "--out", str(out), *extra])


def test_export_then_import_gives_back_features_and_labels(store_dir: Path, tiny_sims_h5: Path,
                                                           tmp_path: Path) -> None:
    ids = label_set_ids(store_dir)
    out = tmp_path / "with_labels.pkl"
    assert _export(store_dir, out, str(ids["copy"])) == 0
    assert labelgen(["import", str(out), "--out", str(tmp_path / "back.h5")]) == 0

    original = load_dataset(tiny_sims_h5)
    back = load_dataset(tmp_path / "back.h5")
    with LabelStore.open(store_dir, create=False) as store:
        labels = store.read_labels(ids["copy"])
    check_dataset(back, "round trip")
    for split, data in original.splits.items():
        rows = labels["split"] == split
        assert list(labels["clip_id"][rows]) == [str(c) for c in data["id"]]
        for key, value in data.items():
            if key in PER_MODALITY:
                continue
            got = back.splits[split][key]
            assert type(got) is type(value), key
            assert np.array_equal(np.asarray(got), np.asarray(value)), (split, key)
            assert np.asarray(got).dtype == np.asarray(value).dtype, (split, key)
        for m in MODALITIES:
            exported = back.splits[split][TRUTH_KEYS[m]]
            assert np.array_equal(exported, labels[m][rows]), (split, m)
            assert exported.dtype == labels[m].dtype
            classes = back.splits[split][f"classification_labels_{TRUTH_KEYS[m][-1]}"]
            assert np.array_equal(classes, np.sign(labels[m][rows]) + 1)

    provenance = json.loads((tmp_path / "with_labels.pkl.provenance.json").read_text())
    assert provenance["labels"]["label_set_id"] == ids["copy"]
    assert provenance["labels"]["method"] == "copy"
    assert provenance["replaced_keys"] == sorted(TRUTH_KEYS.values())  # SIMS's own truth
    assert provenance["dataset_content_sha256"] == dataset_hash(original)
    assert provenance["synthetic"] is True
    from storage.files import sha256_file

    assert provenance["file_sha256"] == sha256_file(out)


def test_export_from_a_label_file_and_latest(store_dir: Path, tiny_sims_h5: Path,
                                             tmp_path: Path) -> None:
    ids = label_set_ids(store_dir)
    with LabelStore.open(store_dir, create=False) as store:
        labels = store.read_labels(ids["ground-truth"])
        label_file = store.label_file_path(store.get_label_set(ids["ground-truth"]))
    assert labelgen(["export", str(tiny_sims_h5), "--labels", str(label_file),
                     "--out", str(tmp_path / "from_file.pkl")]) == 0
    csv = write_csv(tmp_path / "labels.csv", list(labels["clip_id"]), labels)
    assert labelgen(["export", str(tiny_sims_h5), "--labels", str(csv),
                     "--out", str(tmp_path / "from_csv.pkl")]) == 0
    latest = tmp_path / "latest.pkl"
    assert _export(store_dir, latest, "latest") == 0
    a, b, c = (load_dataset(tmp_path / name) for name in ("from_file.pkl", "from_csv.pkl",
                                                            "latest.pkl"))
    for m in MODALITIES:
        key = TRUTH_KEYS[m]
        assert np.array_equal(a.splits["test"][key], b.splits["test"][key])
        assert np.array_equal(a.splits["test"][key], c.splits["test"][key])


def test_outputs_are_not_overwritten_and_partial_sets_are_refused(
        store_dir: Path, tiny_sims_h5: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ids = label_set_ids(store_dir)
    out = tmp_path / "x.pkl"
    assert _export(store_dir, out, str(ids["copy"])) == 0
    before = out.read_bytes()
    assert _export(store_dir, out, str(ids["ground-truth"])) == 2
    assert "file exists (use --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    # The provenance beside it counts as an output too.
    other = tmp_path / "y.pkl"
    (tmp_path / "y.pkl.provenance.json").write_text("{}")
    assert _export(store_dir, other, str(ids["copy"])) == 2
    assert not other.exists()
    assert _export(store_dir, other, str(ids["copy"]), "--force") == 0

    with LabelStore.open(store_dir, create=False) as store:
        labels = store.read_labels(ids["copy"])
    keep = np.arange(len(labels["clip_id"])) != 5
    partial = write_csv(tmp_path / "partial.csv", list(labels["clip_id"][keep]),
                        {m: labels[m][keep] for m in MODALITIES})
    capsys.readouterr()
    assert labelgen(["export", str(tiny_sims_h5), "--labels", str(partial),
                     "--out", str(tmp_path / "partial.pkl")]) == 2
    err = capsys.readouterr().err
    assert "does not cover every clip" in err and str(labels["clip_id"][5]) in err
    assert not (tmp_path / "partial.pkl").exists()
    assert not (tmp_path / "partial.pkl.provenance.json").exists()
