"""MMSA feature files: a pickled dict of splits (`train`, `valid`, `test`) of per-clip arrays.

Reading goes through `safe_pickle`, so a hostile file is refused before anything in it
runs. The pickle carries no file-level attributes; `MMSADataset.label_bound` infers H.
"""

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from mugcore.data.safe_pickle import load_path
from mugcore.data.schema import SPLITS, MMSADataset
from mugcore.errors import DatasetError

PICKLE_PROTOCOL = 4  # what MMSA's own files use; readable by every Python 3 we support
_SYNTHETIC_ID = re.compile(r"^synthetic_([a-z]+)_\d+\$_\$\d+$")


def read_pickle(path: Path) -> MMSADataset:
    data = load_path(path)
    splits = _as_splits(data, path)
    return MMSADataset(splits=splits, attrs=_synthetic_mark(splits))


def _synthetic_mark(splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A pickle has no attributes, so synthetic data (`mugcore.data.synth`) is marked by its
    clip ids, 'synthetic_<preset>_...': keep that mark (and the preset) when every id has it."""
    presets = set()
    for split in splits.values():
        ids = split.get("id")
        if not isinstance(ids, np.ndarray | list) or len(ids) == 0:
            return {}
        for clip in np.asarray(ids, dtype=object).reshape(-1):
            match = _SYNTHETIC_ID.match(clip) if isinstance(clip, str) else None
            if match is None:
                return {}
            presets.add(match.group(1))
    if not presets:
        return {}
    return {"synthetic": True, **({"preset": presets.pop()} if len(presets) == 1 else {})}


def write_pickle(ds: MMSADataset, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(ds.splits, f, protocol=PICKLE_PROTOCOL)


def _as_splits(data: Any, path: Path) -> dict[str, dict[str, Any]]:
    expected = ", ".join(SPLITS)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: top level is a {type(data).__name__}, "
                           f"expected a dict of splits ({expected})")
    for name, split in data.items():
        if not isinstance(name, str):
            raise DatasetError(f"{path}: split name {name!r} is not a string")
        if not isinstance(split, dict):
            raise DatasetError(f"{path}: split '{name}' is a {type(split).__name__}, expected a "
                               f"dict of per-clip arrays (top level must be splits: {expected})")
        for key in split:
            if not isinstance(key, str):
                raise DatasetError(f"{path}: split '{name}' has key {key!r}, not a string")
    return data
