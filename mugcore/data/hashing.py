"""A content hash of a dataset: the same for an MMSA pickle and its HDF5 copy.

sha256 over the splits and keys in sorted order; for each value its kind, dtype,
shape and bytes. Strings hash as their UTF-8 text, so a `<U` array and an object
array (or a list) of the same strings hash alike; a list of numbers hashes like the
array numpy makes of it. File attributes (`synthetic`, `preset`, ...) are not content.
"""

import hashlib
from typing import Any

import numpy as np

from mugcore.data.schema import MMSADataset

_VERSION = b"mug-dataset-hash/1\0"


def dataset_hash(ds: MMSADataset) -> str:
    h = hashlib.sha256(_VERSION)
    for split in sorted(ds.splits):
        for key in sorted(ds.splits[split]):
            h.update(f"{split}/{key}\0".encode())
            _update(h, ds.splits[split][key])
    return h.hexdigest()


def _update(h: "hashlib._Hash", value: Any) -> None:
    array = np.asarray(value, dtype=object) if _is_str_list(value) else np.asarray(value)
    if array.dtype.kind in "OU":
        h.update(f"str|{array.shape}\0".encode())
        for item in array.flat:
            text = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else repr(
                item).encode()
            h.update(len(text).to_bytes(8, "little"))
            h.update(text)
        return
    h.update(f"{array.dtype.str}|{array.shape}\0".encode())
    # A view of the array's own memory: no copy of a large feature array unless it is strided.
    h.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
