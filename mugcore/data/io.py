"""Load and save datasets by file suffix: MMSA pickles and the project's HDF5 format."""

import os
import uuid
from pathlib import Path

from mugcore.data import h5format, mmsa
from mugcore.data.schema import MMSADataset
from mugcore.data.validate import check_dataset
from mugcore.errors import DatasetError

PICKLE_SUFFIXES = (".pkl", ".pickle")
HDF5_SUFFIXES = (".h5", ".hdf5")


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


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory, to make a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
