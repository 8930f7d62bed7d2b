"""pkl -> h5 -> pkl gives the same arrays bit for bit; the content hash ignores the format."""

import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from mmsa_builders import assert_identical, listing, make_mmsa

from mugcore.data import h5format
from mugcore.data.hashing import dataset_hash
from mugcore.data.io import load_dataset, save_dataset
from mugcore.data.schema import MMSADataset
from mugcore.errors import DatasetError


@pytest.mark.parametrize("aligned", [True, False])
def test_pickle_to_h5_to_pickle_is_bit_for_bit(tmp_path: Path, aligned: bool) -> None:
    ds = make_mmsa(aligned=aligned)
    save_dataset(ds, tmp_path / "a.pkl")
    from_pkl = load_dataset(tmp_path / "a.pkl")
    save_dataset(from_pkl, tmp_path / "a.h5")
    from_h5 = load_dataset(tmp_path / "a.h5")
    save_dataset(from_h5, tmp_path / "b.pkl")
    with open(tmp_path / "b.pkl", "rb") as f:  # our own file, so plain pickle is fine here
        again = MMSADataset(splits=pickle.load(f))
    for copy in (from_pkl, from_h5, again):
        assert_identical(ds, copy)
    assert ("audio_lengths" in from_h5.splits["train"]) is not aligned
    assert dataset_hash(ds) == dataset_hash(from_pkl) == dataset_hash(from_h5)
    assert listing(tmp_path) == ["a.h5", "a.pkl", "b.pkl"]  # no temporary files left over


def test_unusual_containers_round_trip(tmp_path: Path) -> None:
    ds = make_mmsa(truth=True)
    train = ds.splits["train"]
    n = len(train["regression_labels"])
    train["flags"] = [bool(i % 2) for i in range(n)]
    train["weights"] = [float(i) / 3 for i in range(n)]
    train["ranks"] = [np.int32(i) for i in range(n)]
    train["names"] = [f"n{i}" for i in range(n)]
    train["pairs"] = np.arange(2 * n, dtype=">i2").reshape(n, 2)  # big-endian stays big-endian
    train["notes"] = np.array([["", "x\u00e9"]] * n, dtype="<U7")
    train["empty"] = []
    ds.attrs.update(synthetic=True, preset="sims", seeds=[1, 2], weight=np.float32(0.5))
    save_dataset(ds, tmp_path / "u.h5")
    back = h5format.read_h5(tmp_path / "u.h5")
    assert_identical(ds, back)
    assert back.attrs["synthetic"] is True and back.attrs["preset"] == "sims"
    assert back.attrs["seeds"] == [1, 2] and back.attrs["weight"] == 0.5
    assert back.label_bound == 1.0
    with h5py.File(tmp_path / "u.h5") as f:
        assert f.attrs["format"] == "mug-mmsa" and f.attrs["format_version"] == 1
        assert f.attrs["label_bound"] == 1.0
        assert f["train/raw_text"].dtype == h5py.string_dtype("utf-8")
        assert f["train/raw_text"].attrs["dtype"] == ds.splits["train"]["raw_text"].dtype.str
        assert f["train/audio_lengths"].attrs["container"] == "list"


def test_hash_tracks_content_not_container(tmp_path: Path) -> None:
    ds = make_mmsa()
    base = dataset_hash(ds)
    ids = ds.splits["valid"]["id"]
    ds.splits["valid"]["id"] = ids.astype(str)  # same strings, '<U' instead of object
    assert dataset_hash(ds) == base
    ds.splits["valid"]["id"] = ids
    ds.splits["test"]["audio"][1, 2, 3] = np.nextafter(ds.splits["test"]["audio"][1, 2, 3],
                                                       np.float32(9))
    assert dataset_hash(ds) != base
    ds2 = make_mmsa()
    ds2.attrs["synthetic"] = True  # file attributes are not content
    assert dataset_hash(ds2) == base


@pytest.mark.parametrize(("value", "needle"), [
    ([1, "a"], "cannot store a list of int, str"),
    (np.array(["ok", "nul\x00inside"], dtype=object), "index 1: string holds a NUL"),
    (np.array([1.5, "x"], dtype=object), "index 0: float in a string array"),
    ({"a": 1}, "cannot store a dict"),
])
def test_unstorable_values_name_the_key_and_leave_nothing(tmp_path: Path, value: Any,
                                                          needle: str) -> None:
    ds = make_mmsa()
    ds.splits["test"]["extra"] = value
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(DatasetError, match="test/extra") as info:
        save_dataset(ds, tmp_path / "bad.h5")
    assert needle in str(info.value)
    assert listing(tmp_path) == ["keep.txt"]


def test_save_and_load_refuse_bad_paths(tmp_path: Path) -> None:
    ds = make_mmsa()
    with pytest.raises(DatasetError, match=r"x\.csv.*unknown dataset file type '\.csv'"):
        save_dataset(ds, tmp_path / "x.csv")
    with pytest.raises(DatasetError, match=r"nope\.h5: no such file"):
        load_dataset(tmp_path / "nope.h5")
    with pytest.raises(DatasetError, match="does not exist"):
        save_dataset(ds, tmp_path / "missing" / "x.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match=r"text\.h5: not a readable HDF5 file"):
        load_dataset(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(DatasetError, match="not a mug-mmsa HDF5 dataset"):
        load_dataset(tmp_path / "other.h5")
    save_dataset(ds, tmp_path / "future.h5")
    with h5py.File(tmp_path / "future.h5", "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(DatasetError, match="format version 99 is newer"):
        load_dataset(tmp_path / "future.h5")


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    good = make_mmsa()
    save_dataset(good, tmp_path / "d.h5")
    bad = make_mmsa(seed=1)
    bad.splits["train"]["extra"] = [object()]
    with pytest.raises(DatasetError):
        save_dataset(bad, tmp_path / "d.h5")
    assert listing(tmp_path) == ["d.h5"]
    assert_identical(good, load_dataset(tmp_path / "d.h5"))


def test_synthetic_fixture_round_trips(tiny_mosi: MMSADataset, tiny_mosi_h5: Path,
                                       tiny_mosi_pkl: Path) -> None:
    from_h5 = load_dataset(tiny_mosi_h5)
    # A pickle carries no attrs: its H is inferred, and synthetic MOSI labels go beyond 1.
    from_pkl = load_dataset(tiny_mosi_pkl)
    assert_identical(tiny_mosi, from_h5)
    assert_identical(tiny_mosi, from_pkl)
    assert from_h5.attrs.get("synthetic") is True and from_h5.label_bound == 3.0
    assert from_pkl.label_bound == 3.0
    assert dataset_hash(from_h5) == dataset_hash(from_pkl) == dataset_hash(tiny_mosi)
