"""`labelgen import-labels` for each format, Self-MM's two quirks included, with hostile and
wrong files refused by name; `labelgen compare` over the result."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from labelgen.cli import main as labelgen
from labelgen.interop.label_files import CMC_REFUSAL
from mugcore.data.schema import MODALITIES, MMSADataset
from storage import LabelStore
from tests.interop.conftest import DATASET, label_set_ids, selfmm_file, write_csv


def _import(store_dir: Path, path: Path, *extra: str) -> int:
    return labelgen(["import-labels", str(path), "--store", str(store_dir), "--dataset", DATASET,
                     *extra])


def _newest(store_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with LabelStore.open(store_dir, create=False) as store:
        info = store.get_label_set("latest", dataset=DATASET)
        return info.to_dict(), dict(store.read_labels(info.id))


def test_csv_is_imported_with_its_source(store_dir: Path, tmp_path: Path) -> None:
    with LabelStore.open(store_dir, create=False) as store:
        copy = store.read_labels(label_set_ids(store_dir)["copy"])
    rng = np.random.default_rng(1)
    values = {m: np.clip(copy[m] + rng.normal(0, 0.1, len(copy[m])), -1, 1) for m in MODALITIES}
    order = rng.permutation(len(copy["clip_id"]))  # any row order
    path = write_csv(tmp_path / "theirs.csv", list(copy["clip_id"][order]),
                     {m: v[order] for m, v in values.items()},
                     header="clip_id,split,text,audio,vision")
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0]] + [f"{r.split(',')[0]},x,{','.join(r.split(',')[1:])}"
                                           for r in text[1:]]) + "\n")
    assert _import(store_dir, path) == 0
    info, arrays = _newest(store_dir)
    assert info["method"] == "imported-csv"
    assert info["provenance"]["source"]["file"] == "theirs.csv"
    assert info["provenance"]["source"]["ignored_columns"] == ["split"]
    assert info["provenance"]["uncertainty"]["method"] == "none"
    for m in MODALITIES:
        assert np.allclose(arrays[m], values[m])
    assert np.allclose(arrays["multimodal"], copy["multimodal"], atol=1e-6)  # float32 in copy


@pytest.mark.parametrize(("edit", "message"), [
    (lambda rows: rows[:1] + rows[2:], "have no label"),
    (lambda rows: rows + [rows[1]], "more than once"),
    (lambda rows: rows[:1] + ["nope$_$1,0.1,0.1,0.1"] + rows[2:], "not in dataset"),
    (lambda rows: rows[:1] + [rows[1].rsplit(",", 1)[0] + ",1.5"] + rows[2:],
     "labels/vision: 1 value(s) not finite or outside [-1, 1]"),
    (lambda rows: rows[:1] + [rows[1].rsplit(",", 1)[0] + ",nan"] + rows[2:], "not finite"),
    (lambda rows: rows[:1] + [rows[1].rsplit(",", 1)[0] + ",abc"] + rows[2:],
     "line 2, column vision: 'abc' is not a number"),
    (lambda rows: ["clip_id,text,audio"] + rows[1:], "lacks column(s) vision"),
])
def test_bad_csv_is_refused_naming_the_problem(store_dir: Path, tmp_path: Path, edit, message,
                                               capsys: pytest.CaptureFixture) -> None:
    with LabelStore.open(store_dir, create=False) as store:
        copy = store.read_labels(label_set_ids(store_dir)["copy"])
        before = len(store.list_label_sets(DATASET))
    rows = write_csv(tmp_path / "x.csv", list(copy["clip_id"]), copy).read_text().splitlines()
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(edit(rows)) + "\n")
    assert _import(store_dir, path) == 2
    assert message in capsys.readouterr().err
    with LabelStore.open(store_dir, create=False) as store:
        assert len(store.list_label_sets(DATASET)) == before  # nothing published


def test_selfmm_cpu_run_pickle_order_and_shuffled_ids(store_dir: Path, tiny_sims: MMSADataset,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    path, final = selfmm_file(tmp_path / "self_mm-sims-labels.pkl", tiny_sims, cpu=True)
    assert _import(store_dir, path) == 0
    out = capsys.readouterr().out
    assert "valid: not labelled by selfmm" in out and "CPU run" in out
    info, arrays = _newest(store_dir)
    assert info["method"] == "imported-selfmm"
    source = info["provenance"]["source"]
    assert source["epoch"] == 3 and source["cpu_aliased_epochs"] is True
    assert info["provenance"]["copy_splits"] == ["valid", "test"]
    train = arrays["split"] == "train"
    # Attached by pickle order: the saved (shuffled) ids would scramble them.
    for m in MODALITIES:
        assert np.allclose(arrays[m][train], final[m])
        assert np.array_equal(arrays[m][~train], arrays["multimodal"][~train])
    # An earlier epoch of a CPU run was never stored: refused, not silently the last one.
    assert _import(store_dir, path, "--epoch", "1") == 2
    assert "never stored" in capsys.readouterr().err


def test_selfmm_gpu_run_keeps_every_epoch(store_dir: Path, tiny_sims: MMSADataset,
                                          tmp_path: Path) -> None:
    path, _ = selfmm_file(tmp_path / "gpu.pkl", tiny_sims, cpu=False)
    assert _import(store_dir, path, "--epoch", "1") == 0
    info, arrays = _newest(store_dir)
    assert info["provenance"]["source"]["cpu_aliased_epochs"] is False
    assert info["options"]["epoch"] == 1
    for m in MODALITIES:  # epoch 1 of Self-MM is its initial labels: copy (saved as float32)
        assert np.allclose(arrays[m], arrays["multimodal"], atol=1e-6)


def test_selfmm_wrong_or_hostile_files_are_refused(store_dir: Path, tiny_sims: MMSADataset,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    path, _ = selfmm_file(tmp_path / "s.pkl", tiny_sims)
    with open(path, "rb") as f:
        saved = pickle.load(f)  # our own fixture, not user input
    for epoch in saved.values():  # labels saved for another order of the train split
        epoch["fusion"] = epoch["fusion"][::-1].copy()
    reordered = tmp_path / "reordered.pkl"
    reordered.write_bytes(pickle.dumps(saved, protocol=4))
    assert _import(store_dir, reordered) == 2
    assert "epoch 3/fusion: differs from the train split's multimodal labels" in (
        capsys.readouterr().err)

    saved[3]["ids"] = ["someone_else$_$1"] * len(saved[3]["ids"])
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps(saved, protocol=4))
    assert _import(store_dir, other) == 2
    assert "not the dataset's train clips" in capsys.readouterr().err

    class Evil:
        def __reduce__(self):  # noqa: ANN204 - what a hostile file carries
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({1: {"fusion": Evil()}}, protocol=4))
    assert _import(store_dir, evil) == 2
    assert "refused to load" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists()

    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    assert _import(store_dir, junk) == 2
    assert "junk.pkl: not a readable pickle" in capsys.readouterr().err


def test_cmc_is_refused_with_the_reason(store_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "SIMS_train_pseudo_labels.pkl"
    path.write_bytes(pickle.dumps({}, protocol=4))
    assert _import(store_dir, path, "--format", "cmc") == 2
    err = capsys.readouterr().err
    assert CMC_REFUSAL[:60] in err and "3 classes" in err


def test_compare_puts_every_set_beside_copy_and_truth(store_dir: Path, tiny_sims: MMSADataset,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    path, _ = selfmm_file(tmp_path / "for-compare.pkl", tiny_sims)
    assert _import(store_dir, path) == 0
    ids = label_set_ids(store_dir)
    capsys.readouterr()
    assert labelgen(["compare", "--all", "--store", str(store_dir), "--dataset", DATASET,
                     "--split", "train", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["has_truth"] and table["moved_threshold"] == pytest.approx(0.167)
    rows = {(r["name"], r["modality"]): r for r in table["rows"]}
    truth = rows[(str(ids["ground-truth"]), "text")]
    assert truth["mae_truth"] < 1e-6 and truth["r_truth"] == pytest.approx(1)
    copy = rows[("copy", "text")]
    assert copy["distance_copy"] == 0 and copy["moved"] == 0
    assert rows[(str(ids["copy"]), "text")]["mae_truth"] == pytest.approx(copy["mae_truth"])
    assert rows[(str(ids["imported-selfmm"]), "vision")]["moved"] > 0
    assert labelgen(["compare", str(ids["copy"]), str(ids["imported-selfmm"]), "--store",
                     str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "imported-selfmm" in out and "MAE truth" in out and "SYNTHETIC" in out
    assert labelgen(["compare", "--store", str(store_dir)]) == 2
