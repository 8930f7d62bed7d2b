"""Small MMSA-format datasets for the data tests, built with numpy in real files' containers."""

from pathlib import Path
from typing import Any

import numpy as np

from mugcore.data.schema import MMSADataset


def make_mmsa(*, aligned: bool = False, sizes: tuple[int, int, int] = (6, 3, 3), seed: int = 0,
              truth: bool = False) -> MMSADataset:
    """A random, valid MMSA-shaped dataset (not real data): aligned or with per-clip lengths.

    Mixes the containers found in MMSA pickles: object and `<U` string arrays, lengths as
    python lists of ints, float32 features, float64 classification labels.
    """
    rng = np.random.default_rng(seed)
    lt, la, lv = (8, 8, 8) if aligned else (8, 12, 10)
    bound = 1.0 if truth else 3.0
    splits, first = {}, 0
    for split, n in zip(("train", "valid", "test"), sizes, strict=True):
        labels = np.round(rng.uniform(-bound, bound, n), 1).astype(np.float32)
        data = {
            "id": np.array([f"vid{(first + i) // 2}$_${(first + i) % 2}" for i in range(n)],
                           dtype=object),
            "raw_text": np.array([f"clip {first + i} says caf\u00e9 \u597d" for i in range(n)]),
            "text": rng.standard_normal((n, lt, 16), dtype=np.float32),
            "text_bert": rng.integers(0, 100, (n, 3, lt)).astype(np.float32),
            "audio": rng.standard_normal((n, la, 5), dtype=np.float32),
            "vision": rng.standard_normal((n, lv, 7), dtype=np.float32),
            "regression_labels": labels,
            "classification_labels": np.sign(labels).astype(np.float64),
            "annotations": np.array(["Positive" if y >= 0 else "Negative" for y in labels],
                                    dtype=object),
        }
        if not aligned:
            data["audio_lengths"] = rng.integers(1, la + 1, n).tolist()
            data["vision_lengths"] = rng.integers(1, lv + 1, n).tolist()
        if truth:
            for key in ("regression_labels_T", "regression_labels_A", "regression_labels_V"):
                data[key] = np.clip(labels + rng.normal(0, 0.2, n), -1, 1).astype(np.float32)
        splits[split] = data
        first += n
    return MMSADataset(splits=splits)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def assert_identical(a: MMSADataset, b: MMSADataset) -> None:
    assert list(a.splits) == list(b.splits)
    for split in a.splits:
        assert list(a.splits[split]) == list(b.splits[split]), split
        for key, x in a.splits[split].items():
            assert_same_value(x, b.splits[split][key], f"{split}/{key}")


def assert_same_value(x: Any, y: Any, where: str) -> None:
    assert type(x) is type(y), where
    if isinstance(x, list):
        assert [type(v) for v in x] == [type(v) for v in y], where
        assert x == y, where
        assert all(getattr(v, "dtype", None) == getattr(w, "dtype", None)
                   for v, w in zip(x, y, strict=True)), where
        return
    assert x.dtype == y.dtype and x.shape == y.shape, where
    if x.dtype == object:
        assert [type(v) for v in x.flat] == [type(v) for v in y.flat], where
        assert x.tolist() == y.tolist(), where
    else:
        assert x.tobytes() == y.tobytes(), where
