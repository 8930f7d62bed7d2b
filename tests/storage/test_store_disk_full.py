"""Store writes on a full disk: registering a dataset (refused before HDF5 begins a file it
could not close) or publishing a label set raises DiskFull (a UserError: a job then fails with
its message instead of its worker dying) and leaves no file behind; the process exits cleanly
(HDF5 left with an unclosable file crashed at exit). SQLite store on a small tmpfs (skipped
where none can be mounted)."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import LabelStore
from storage.errors import DiskFull
from storage.testing import clip_table, fill_disk, random_dataset, seeded_labels, small_tmpfs


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "disk").mkdir()
    with small_tmpfs(tmp_path / "disk", 24) as mount:
        yield mount


def test_writes_on_a_full_disk_are_disk_full_and_leave_nothing(disk: Path) -> None:
    ds = random_dataset((400, 100, 100), seed=0, prefix="vid")
    with LabelStore.open(disk / "store") as store:
        store.register_dataset("fits", ds, source_format="pickle")
        filler = fill_disk(disk, leave=16 << 10)
        try:
            with pytest.raises(DiskFull, match="registering a dataset: the store's disk is full"):
                store.register_dataset("full", random_dataset((4000, 100, 100), seed=1,
                                                              prefix="big"),
                                       source_format="pickle")
            with pytest.raises(DiskFull, match="publishing a label set"):
                store.publish_label_set("fits", seeded_labels(clip_table(ds), 1),
                                        method="copy", options={}, seed=1)
            assert len(list((disk / "store" / "datasets").iterdir())) == 1
            assert list((disk / "store" / "labels").iterdir()) == []
        finally:
            filler.unlink()
        assert [d.name for d in store.list_datasets()] == ["fits"]
        store.publish_label_set("fits", seeded_labels(clip_table(ds), 1), method="copy",
                                options={}, seed=1)


def test_import_to_a_full_disk_is_one_line_and_a_clean_exit(disk: Path, tiny_mosi_pkl: Path
                                                           ) -> None:
    filler = fill_disk(disk, leave=1 << 20)
    try:
        out = disk / "mosi.h5"
        r = subprocess.run([sys.executable, "-m", "labelgen.cli", "import", str(tiny_mosi_pkl),
                            "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 2, (r.returncode, r.stderr[-2000:])  # not -11: no crash at exit
        assert "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("labelgen: error: ")
        assert "disk is full" in r.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    finally:
        filler.unlink()
