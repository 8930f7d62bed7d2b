"""What an HDF5 file from a user may hold before anything in it is read.

HDF5 can make a read reach outside the file: external raw storage (a dataset's bytes live in
any file the server can open), external links and virtual datasets (into other HDF5 files),
soft links (to any path, an external link's too) and filter plugins (code loaded from the
server's plugin path). The project's format uses none of them, so `check_h5_file` refuses them
all, naming the dataset path, before a byte of data is read. It also refuses a file whose
datasets declare far more data than the file could plausibly hold (unwritten chunks read as
fill values), so that a small upload cannot make the reader allocate gigabytes, and string
datasets with a fill value (each unwritten string would read as that value).

`ReadBudget` then follows the read itself: the reader charges what it is about to build
(arrays, Python strings as they are decoded, lists of Python numbers) to the same budget, so
that what no declaration shows (many strings stored once and referenced many times) is
refused before it is allocated.
"""

import sys
from pathlib import Path

import h5py
import numpy as np

from mugcore.data.budget import Budget
from mugcore.errors import DatasetError, shorten

# Filters built into HDF5 and h5py (deflate, shuffle, fletcher32, szip, nbit, scaleoffset,
# lzf): no plugin is ever loaded for them.
KNOWN_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit",
                 6: "scaleoffset", 32000: "lzf"}
# Data the datasets of a file may declare: compression of real features stays far below this
# ratio, and small files get a floor so that tiny test files are never judged by it.
MAX_EXPANSION = 64
EXPANSION_FLOOR_BYTES = 64 << 20
# What one element read as a Python object costs at least: a pointer in its array plus the
# object (a str, a float): charged for variable-length strings and list conversions.
OBJECT_BYTES = 64


def read_budget(file_size: int) -> int:
    """What reading a file of `file_size` bytes may allocate in all."""
    return EXPANSION_FLOOR_BYTES + MAX_EXPANSION * file_size


class ReadBudget(Budget):
    """What reading one HDF5 file has allocated so far; `charge` before each allocation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file_size = path.stat().st_size
        limit = read_budget(self.file_size)
        super().__init__(limit, lambda where: DatasetError(
            f"{path}: {where}: reading the file would allocate more than {limit >> 20} MiB, "
            f"more than a file of {self.file_size} bytes can need (at most {MAX_EXPANSION}x "
            f"its size plus {EXPANSION_FLOOR_BYTES >> 20} MiB)"))

    def charge_strings(self, texts: list[str], where: str) -> None:
        self.charge(sum(sys.getsizeof(t) for t in texts) + 8 * len(texts), where)


def check_h5_file(f: h5py.File, path: Path) -> None:
    """Raise `DatasetError` naming the first object of `f` that reads outside it or that
    declares too much data; see the module doc."""
    budget = read_budget(path.stat().st_size)
    declared = 0
    seen: set[int] = set()
    pending: list[tuple[h5py.Group, str]] = [(f, "")]
    while pending:
        group, prefix = pending.pop()
        for name in sorted(group):
            where = f"{prefix}{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise DatasetError(f"{path}: {where} is an external link to another file; "
                                   "datasets must hold their data in the file itself")
            if isinstance(link, h5py.SoftLink):
                raise DatasetError(f"{path}: {where} is a soft link; the format stores every "
                                   "dataset under its own name")
            obj = group[name]
            address = h5py.h5o.get_info(obj.id).addr
            if address in seen:  # hard links may form cycles
                continue
            seen.add(address)
            if isinstance(obj, h5py.Group):
                pending.append((obj, f"{where}/"))
            elif isinstance(obj, h5py.Dataset):
                _check_storage(obj, path, where)
                declared += _declared_bytes(obj, path, where)
                if declared > budget:
                    raise DatasetError(
                        f"{path}: {where} declares {declared >> 20} MiB of data in all, more "
                        f"than a file of {path.stat().st_size} bytes can hold (at most "
                        f"{MAX_EXPANSION}x its size plus {EXPANSION_FLOOR_BYTES >> 20} MiB)")


def _check_storage(dset: h5py.Dataset, path: Path, where: str) -> None:
    if dset.is_virtual:
        raise DatasetError(f"{path}: {where} is a virtual dataset (it maps other files); "
                           "datasets must hold their data in the file itself")
    plist = dset.id.get_create_plist()
    if plist.get_external_count():
        raise DatasetError(f"{path}: {where} uses external storage (its bytes live in another "
                           "file); datasets must hold their data in the file itself")
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in KNOWN_FILTERS:
            raise DatasetError(f"{path}: {where} uses HDF5 filter {code}, which this reader "
                               f"does not know (known: {', '.join(KNOWN_FILTERS.values())})")
    if dset.dtype.kind == "O" and h5py.check_string_dtype(dset.dtype) is not None:
        fill = dset.fillvalue
        if isinstance(fill, bytes | str) and len(fill):
            raise DatasetError(f"{path}: {where} is a string dataset with a fill value of "
                               f"{len(fill)} bytes: every string the file does not hold would "
                               "read as it; the format writes strings without one")


def _declared_bytes(dset: h5py.Dataset, path: Path, where: str) -> int:
    """What reading `dset` allocates at least: its elements at the larger of the stored
    itemsize (a Python object each for variable-length data) and the one its `dtype` attribute
    asks the reader to convert to."""
    itemsize = OBJECT_BYTES if dset.dtype.kind == "O" else dset.dtype.itemsize
    wanted = dset.attrs.get("dtype")
    if wanted is not None:
        try:
            itemsize = max(itemsize, np.dtype(wanted).itemsize)
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: {where} has an unreadable dtype attribute "
                               f"{shorten(wanted)}") from None
    return int(dset.size or 0) * itemsize
