"""Helpers for tests and benchmarks of the store: small random datasets and label sets whose
values follow from their seed, so a reader can tell a whole label set from a mixed or partial
one. THE DATA IS RANDOM AND SYNTHETIC: features carry no signal."""

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mugcore.data.schema import SPLITS, TRUTH_KEYS, MMSADataset


def random_dataset(sizes: tuple[int, int, int], *, seed: int = 0, prefix: str = "clip",
                   label_bound: float = 3.0, truth: bool = True) -> MMSADataset:
    """An MMSA-shaped dataset with tiny feature arrays; clip ids `{prefix}{i}$_${j}`."""
    rng = np.random.default_rng(seed)
    splits = {}
    start = 0
    for split, n in zip(SPLITS, sizes, strict=True):
        labels = np.round(rng.uniform(-label_bound, label_bound, n) * 5) / 5
        data = {
            "id": np.array([f"{prefix}{(start + i) // 8}$_${(start + i) % 8}" for i in range(n)]),
            "raw_text": np.array([f"synthetic clip {start + i}" for i in range(n)]),
            "text": rng.standard_normal((n, 4, 8)).astype(np.float32),
            "text_bert": np.ones((n, 3, 4), dtype=np.float32),
            "audio": rng.standard_normal((n, 5, 3)).astype(np.float32),
            "vision": rng.standard_normal((n, 5, 2)).astype(np.float32),
            "audio_lengths": rng.integers(1, 6, n),
            "vision_lengths": rng.integers(1, 6, n),
            "regression_labels": labels.astype(np.float32),
        }
        if truth:
            for key in TRUTH_KEYS.values():
                data[key] = np.clip(labels + rng.normal(0, 0.3, n), -label_bound,
                                    label_bound).astype(np.float32)
        splits[split] = data
        start += n
    return MMSADataset(splits, {"synthetic": True, "label_bound": label_bound})


def clip_table(ds: MMSADataset) -> dict[str, np.ndarray]:
    """clip_id, split and multimodal arrays over all clips, in split order."""
    return {
        "clip_id": np.concatenate([np.asarray(ds.splits[s]["id"], dtype=str) for s in SPLITS]),
        "split": np.concatenate([np.full(ds.size(s), s) for s in SPLITS]),
        "multimodal": np.concatenate([np.asarray(ds.splits[s]["regression_labels"],
                                                 dtype=np.float32) for s in SPLITS]),
    }


def seeded_unilabels(n: int, seed: int, label_bound: float = 3.0) -> dict[str, np.ndarray]:
    """Uni-labels that are a function of `seed` alone (float32, within the bound)."""
    rng = np.random.default_rng(seed)
    return {m: rng.uniform(-label_bound, label_bound, n).astype(np.float32)
            for m in ("text", "audio", "vision")}


def seeded_labels(clips: dict[str, np.ndarray], seed: int,
                  label_bound: float = 3.0) -> dict[str, np.ndarray]:
    """A full `labels` mapping for `publish_label_set` (clips from `clip_table`)."""
    return {**clips, **seeded_unilabels(len(clips["clip_id"]), seed, label_bound)}


def seeded_uncertainty(unilabels: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """MADE-UP per-clip uncertainty arrays (`{m}_std`, `{m}_lower`, `{m}_upper`) around the given
    uni-labels, a function of `seed` alone: valid for publishing, meaningless as estimates."""
    rng = np.random.default_rng(seed)
    out = {}
    for m in ("text", "audio", "vision"):
        n = len(unilabels[m])
        std = rng.uniform(0.05, 0.8, n).astype(np.float32)
        out[f"{m}_std"] = std
        out[f"{m}_lower"] = (unilabels[m] - 1.645 * std * rng.uniform(0.5, 1.5, n)
                             ).astype(np.float32)
        out[f"{m}_upper"] = (unilabels[m] + 1.645 * std * rng.uniform(0.5, 1.5, n)
                             ).astype(np.float32)
    return out


@contextmanager
def small_tmpfs(mount: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` mounted on `mount` (for full-disk tests); the test is skipped
    where this machine does not let it mount one (no privilege)."""
    import pytest

    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                        str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(directory: Path, leave: int) -> Path:
    """A file that takes all the free space of `directory`'s file system but `leave` bytes."""
    filler = directory / "filler"
    with open(filler, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while shutil.disk_usage(directory).free > leave + len(chunk):
            f.write(chunk)
        f.write(b"\0" * max(0, shutil.disk_usage(directory).free - leave))
    return filler
