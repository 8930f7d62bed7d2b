"""Publishing survives SIGKILL at any point: after every kill the store holds whole label sets
only (each row's file present, complete, with the values its seed implies), and an open cleans
the temp and orphan files the dead publisher left."""

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np

from storage import LabelStore
from storage.files import TEMP_PREFIX, read_label_file, sha256_file
from storage.testing import clip_table, random_dataset, seeded_labels, seeded_unilabels

KILLS = 32


def _publish_forever(location: str, files: str | None, clips: dict[str, np.ndarray],
                     first_seed: int, ready: "multiprocessing.synchronize.Event") -> None:
    with LabelStore.open(location, files=files) as store:
        seed = first_seed
        while True:
            store.publish_label_set("ds", seeded_labels(clips, seed), method="copy",
                                    options={"seed": seed}, seed=seed)
            # The first publish of a process is slower (caches warm up): kill in steady state.
            ready.set()
            seed += 1


def _check(store: LabelStore, n_clips: int, checked: dict[int, str]) -> None:
    """Every label set is whole and right. `checked` (label set id -> file name, updated here)
    holds those verified before: immutable, so they need only still be there."""
    rows = store.list_label_sets("ds")
    assert {ls.id: Path(ls.file).name for ls in rows}.items() >= checked.items()
    for ls in rows:
        path = store.label_file_path(ls)
        assert path.is_file(), f"label set {ls.id}: file {ls.file} is missing"
        if ls.id in checked:
            continue
        assert not path.name.startswith(TEMP_PREFIX)
        assert sha256_file(path) == ls.file_sha256
        arrays = read_label_file(path)
        assert ls.n_clips == n_clips and all(len(v) == n_clips for v in arrays.values())
        for key, values in seeded_unilabels(n_clips, ls.seed).items():
            np.testing.assert_array_equal(arrays[key], values)
        checked[ls.id] = path.name


def test_sigkill_while_publishing(spec):
    ds = random_dataset((300, 60, 60), seed=0, prefix="vid")
    with spec.open() as store:
        store.register_dataset("ds", ds, source_format="synthetic")
    rng = random.Random(1234)
    ctx = multiprocessing.get_context("fork")
    seed, checked, strays = 0, {}, set()
    clips = clip_table(ds)
    for _ in range(KILLS):
        ready = ctx.Event()
        child = ctx.Process(target=_publish_forever,
                            args=(spec.location, spec.files, clips, seed, ready))
        child.start()
        assert ready.wait(60)
        # A publish takes 50-150 ms here: kills land all over its sequence of steps.
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        seed += 1000
        with spec.open() as store:
            _check(store, 420, checked)
            on_disk = {p.name for p in (store.root / "labels").iterdir()}
            assert set(checked.values()) <= on_disk
            strays |= on_disk - set(checked.values())
    with spec.open() as store:
        _check(store, 420, checked)
        store.clean_stray_files(grace_s=0)
        assert {p.name for p in (store.root / "labels").iterdir()} == set(checked.values())
        assert store.lookup("vid0$_$0").label_set == max(checked)
    # Some kills hit a publish between creating its temp file and committing its row.
    assert len(strays) >= 3, strays
    print(f"{spec.backend}: {len(checked)} label sets published, {len(strays)} strays left "
          f"by {KILLS} kills")
