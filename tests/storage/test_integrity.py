"""Damaged store files are found and named: a label file changed since publication (its sha256
is in its row), a truncated features file, a missing file. Reads of them are a DamagedStore
(one line in the CLI), `find_damage` and `labelgen store check` list them, on both backends."""

import os

import pytest

from storage.errors import DamagedStore, NotFound
from storage.testing import clip_table, seeded_labels
from tests.storage.test_cli import labelgen


@pytest.fixture
def filled(spec, store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    clips = clip_table(small_ds)
    ls = store.publish_label_set("mosi", seeded_labels(clips, 1), method="copy", options={},
                                 seed=1)
    return store, ls


def _flip_a_byte(path, offset: int = -64) -> None:
    with open(path, "r+b") as f:
        f.seek(offset, os.SEEK_END)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_sound_store_has_no_damage(spec, filled, capsys):
    store, _ = filled
    assert store.find_damage(deep=True) == []
    assert labelgen(spec, "store", "check") == 0
    assert "all 2 files sound" in capsys.readouterr().out


def test_changed_label_file_is_refused_and_listed(spec, filled, capsys):
    store, ls = filled
    _flip_a_byte(spec.root / ls.file)
    with spec.open() as fresh:  # a new process: nothing cached
        with pytest.raises(DamagedStore, match=rf"label set {ls.id}: .* damaged \(sha256"):
            fresh.read_labels(ls.id)
        with pytest.raises(DamagedStore):
            fresh.label_file_path(fresh.get_label_set(ls.id))
        assert [d.what for d in fresh.find_damage(deep=False)] == [f"label set {ls.id}"]
    assert labelgen(spec, "store", "check") == 1
    out = capsys.readouterr().out
    assert f"damaged: {ls.file} (label set {ls.id}): sha256" in out
    assert "1 of 2 files missing or damaged" in out


def test_truncated_features_file_is_refused_and_listed(spec, filled, capsys):
    store, _ = filled
    path = spec.root / store.get_dataset("mosi").features_file
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(DamagedStore, match="dataset mosi: its features file .* unreadable"):
        store.features_path("mosi")
    assert [d.what for d in store.find_damage(deep=False)] == ["dataset mosi"]
    assert labelgen(spec, "store", "check") == 1
    assert "(dataset mosi): unreadable as HDF5" in capsys.readouterr().out


def test_missing_label_file_is_not_found_on_read_and_damage_on_check(spec, filled, capsys):
    store, ls = filled
    (spec.root / ls.file).unlink()
    with spec.open() as fresh:
        with pytest.raises(NotFound, match="is gone"):
            fresh.read_labels(ls.id)
        with pytest.raises(NotFound, match="is gone"):
            fresh.label_file_path(fresh.get_label_set(ls.id))
        assert [str(d) for d in fresh.find_damage(deep=False)] == [
            f"{ls.file} (label set {ls.id}): missing"]
    assert labelgen(spec, "store", "check") == 1
    assert "missing" in capsys.readouterr().out


def test_check_of_no_store_is_one_line(tmp_path, capsys):
    assert labelgen(type("S", (), {"location": str(tmp_path / "none"), "files": None}),
                    "store", "check") == 2
    assert "no label store" in capsys.readouterr().err
