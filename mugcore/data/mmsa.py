"""MMSA feature files: a pickled dict of splits (`train`, `valid`, `test`) of per-clip arrays.

Reading goes through `safe_pickle`, so a hostile file is refused before anything in it
runs. The pickle carries no file-level attributes; `MMSADataset.label_bound` infers H.
"""

import pickle
from pathlib import Path
from typing import Any

from mugcore.data.safe_pickle import safe_load
from mugcore.data.schema import SPLITS, MMSADataset
from mugcore.errors import DatasetError, UnsafePickleError

PICKLE_PROTOCOL = 4  # what MMSA's own files use; readable by every Python 3 we support


def read_pickle(path: Path) -> MMSADataset:
    try:
        with open(path, "rb") as f:
            data = safe_load(f)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # whatever a malformed pickle makes fail is the file's fault
        raise DatasetError(
            f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    return MMSADataset(splits=_as_splits(data, path))


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
