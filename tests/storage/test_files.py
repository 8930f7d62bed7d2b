"""The file layer alone: locked atomic writes, the stray-file cleaner, the label-file format."""

import h5py
import numpy as np
import pytest

from mugcore.errors import UserError
from storage.files import (
    LABEL_FORMAT_VERSION,
    TEMP_PREFIX,
    clean_stray_files,
    encode_label_set,
    read_label_file,
    sha256_file,
    write_locked,
)
from storage.testing import seeded_uncertainty
from storage.uncertainty import UNCERTAINTY_KEYS


def test_cleaner_spares_live_writers_and_referenced_files(tmp_path):
    live = write_locked(tmp_path, b"being published")
    assert sha256_file(live.path) == live.sha256 and not live.path.name.startswith(TEMP_PREFIX)
    dead_temp = tmp_path / f"{TEMP_PREFIX}dead.h5"
    dead_temp.write_bytes(b"half")
    kept = write_locked(tmp_path, b"committed")
    kept.release()

    removed = clean_stray_files(tmp_path, lambda p: p == kept.path, grace_s=0)
    assert removed == [dead_temp]
    assert live.path.exists() and kept.path.exists()
    live.release()  # its writer gone without a row: now it is garbage
    assert clean_stray_files(tmp_path, lambda p: p == kept.path, grace_s=0) == [live.path]
    assert clean_stray_files(tmp_path, lambda p: False, grace_s=3600) == []  # too young


def test_discard_removes_the_file(tmp_path):
    published = write_locked(tmp_path, b"x")
    published.discard()
    assert list(tmp_path.iterdir()) == []


def test_label_file_round_trip_with_non_ascii_ids(tmp_path):
    arrays = {"clip_id": np.array(["a$_$1", "é$_$2", ""]), "split": np.array(["train"] * 3),
              **{k: np.array([0.5, -1.0, 3.0], dtype=np.float32)
                 for k in ("multimodal", "text", "audio", "vision")}}
    published = write_locked(tmp_path, encode_label_set(arrays, {"method": "copy"}))
    published.release()
    back = read_label_file(published.path)
    assert back["clip_id"].tolist() == ["a$_$1", "é$_$2", ""]
    assert back["split"].tolist() == ["train"] * 3
    np.testing.assert_array_equal(back["vision"], arrays["vision"])


def _label_arrays(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"clip_id": np.array([f"c$_${i}" for i in range(n)]), "split": np.array(["train"] * n),
            **{k: rng.uniform(-3, 3, n).astype(np.float32)
               for k in ("multimodal", "text", "audio", "vision")}}


def test_label_file_round_trip_with_uncertainty(tmp_path):
    arrays = _label_arrays(5)
    made_up = seeded_uncertainty(arrays, seed=3)
    published = write_locked(tmp_path, encode_label_set({**arrays, **made_up}, {}))
    published.release()
    back = read_label_file(published.path)
    assert sorted(back) == sorted([*arrays, *UNCERTAINTY_KEYS])
    for key in UNCERTAINTY_KEYS:
        assert back[key].dtype == np.float32
        np.testing.assert_array_equal(back[key], made_up[key])
    with h5py.File(published.path, "r") as f:
        assert f.attrs["format_version"] == LABEL_FORMAT_VERSION == 2


def test_some_uncertainty_arrays_are_refused(tmp_path):
    arrays = {**_label_arrays(3), "text_std": np.ones(3, dtype=np.float32)}
    with pytest.raises(UserError, match="labels/text_lower: missing"):
        encode_label_set(arrays, {})


def test_version_1_file_without_uncertainty_still_reads(tmp_path):
    """A file as the first format wrote it: version 1, no uncertainty arrays."""
    arrays = _label_arrays(4)
    path = tmp_path / "old.h5"
    path.write_bytes(encode_label_set(arrays, {"method": "copy"}))
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 1
    back = read_label_file(path)
    assert sorted(back) == sorted(arrays)
    np.testing.assert_array_equal(back["audio"], arrays["audio"])


def test_newer_format_and_partial_uncertainty_files_are_refused(tmp_path):
    arrays = _label_arrays(4)
    newer, partial = tmp_path / "newer.h5", tmp_path / "partial.h5"
    newer.write_bytes(encode_label_set(arrays, {}))
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = LABEL_FORMAT_VERSION + 1
    with pytest.raises(OSError, match="format version 3"):
        read_label_file(newer)
    partial.write_bytes(encode_label_set({**arrays, **seeded_uncertainty(arrays, 0)}, {}))
    with h5py.File(partial, "a") as f:
        del f["vision_upper"]
    with pytest.raises(OSError, match="some uncertainty arrays missing"):
        read_label_file(partial)
