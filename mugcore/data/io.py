"""Load and save datasets by file suffix: MMSA pickles and the project's HDF5 format."""

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from mugcore.data import h5format, mmsa
from mugcore.data.schema import MMSADataset
from mugcore.data.validate import check_dataset
from mugcore.errors import DatasetError, DiskFull

PICKLE_SUFFIXES = (".pkl", ".pickle")
HDF5_SUFFIXES = (".h5", ".hdf5")
# Free space kept beside a file being written (HDF5's metadata, what follows the write).
ROOM_MARGIN_BYTES = 4 << 20


def dataset_kind(path: str | os.PathLike) -> str:
    """'pickle' or 'hdf5' from the suffix of `path`; `DatasetError` for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    known = ", ".join((*PICKLE_SUFFIXES, *HDF5_SUFFIXES))
    raise DatasetError(f"{path}: unknown dataset file type {suffix or '(no suffix)'!r} "
                       f"(expected one of {known})")


def load_dataset(path: str | os.PathLike, *, validate: bool = True) -> MMSADataset:
    path = Path(path)
    kind = dataset_kind(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    ds = mmsa.read_pickle(path) if kind == "pickle" else h5format.read_h5(path)
    if validate:
        check_dataset(ds, str(path))
    return ds


def save_dataset(ds: MMSADataset, path: str | os.PathLike, *, progress: bool = False) -> None:
    """Write `ds` to a temporary name beside `path`, fsync it, then rename it into place."""
    path = Path(path)
    kind = dataset_kind(path)
    if not path.parent.is_dir():
        raise DatasetError(f"{path}: directory {path.parent} does not exist")
    check_room(ds, path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        if kind == "pickle":
            mmsa.write_pickle(ds, tmp)
        else:
            h5format.write_h5(ds, tmp, progress=progress)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)  # make the rename itself durable


def check_room(ds: MMSADataset, path: Path) -> None:
    """Refuse before writing when `ds` would not fit beside `path`: HDF5 that meets a full
    disk cannot close its file (the library keeps it open, and the process may crash at exit),
    so a write known to fail is not begun. One that still finds the disk full (space taken
    meanwhile) fails as the file system says."""
    need = sum(_stored_bytes(value) for split in ds.splits.values() for value in split.values())
    free = shutil.disk_usage(path.parent).free
    if free < need + need // 20 + ROOM_MARGIN_BYTES:
        raise DiskFull(f"{path}: the disk is full (the file needs about {need >> 20} MiB, "
                       f"{free >> 20} MiB are free); nothing was written")


def _stored_bytes(value: Any) -> int:
    """About what one per-clip value takes in either format (arrays are stored raw)."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "OU":
        return value.nbytes
    items = value.reshape(-1).tolist() if isinstance(value, np.ndarray) else value
    # Strings as UTF-8 plus a per-string reference; a list's numbers as 8 bytes each.
    return sum(len(v.encode("utf-8", "replace")) + 16 if isinstance(v, str) else 8
               for v in items)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory, to make a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
