"""The file layer alone: locked atomic writes and the stray-file cleaner."""

import numpy as np

from storage.files import (
    TEMP_PREFIX,
    clean_stray_files,
    encode_label_set,
    read_label_file,
    sha256_file,
    write_locked,
)


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
