"""The project's HDF5 dataset format (layout documented in docs/dataset-format.md).

One group per split, one dataset per key. Each dataset records the container and
dtype the values had in memory (`container`, `dtype`, `item` attributes) so that
pickle -> HDF5 -> pickle returns the same arrays bit for bit.
"""

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from mugcore.data.h5safety import check_h5_file
from mugcore.data.schema import MMSADataset
from mugcore.errors import DatasetError

log = logging.getLogger(__name__)

FORMAT_NAME = "mug-mmsa"
FORMAT_VERSION = 1
_CHUNK_BYTES = 1 << 20  # about 1 MiB per chunk: partial reads stay cheap, writes stay fast
_STR = h5py.string_dtype("utf-8")


def write_h5(ds: MMSADataset, path: Path, *, progress: bool = False) -> None:
    items = [(s, k, v) for s, split in ds.splits.items() for k, v in split.items()]
    with h5py.File(path, "w", track_order=True) as f:
        _write_root_attrs(f, ds)
        for split in ds.splits:
            f.create_group(split, track_order=True)
        # disable=None: a bar on a terminal, silence in logs and tests
        bar = tqdm(items, desc="writing HDF5", unit="key", disable=None if progress else True)
        for split, key, value in bar:
            _write_value(f[split], split, key, value)


def read_h5(path: Path) -> MMSADataset:
    try:
        with h5py.File(path, "r") as f:
            check_h5_file(f, path)
            attrs = _read_root_attrs(f, path)
            splits: dict[str, dict[str, Any]] = {}
            for split, group in f.items():
                if not isinstance(group, h5py.Group):
                    raise DatasetError(f"{path}: '{split}' is not a group of per-clip datasets")
                splits[split] = {key: _read_value(dset, path, f"{split}/{key}")
                                 for key, dset in group.items()}
    except OSError as exc:  # not HDF5 at all, or a damaged file
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from None
    return MMSADataset(splits=splits, attrs=attrs)


def read_h5_keys(path: Path, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Only `keys` of each split (keys a split lacks are left out): a partial read, e.g. the
    raw texts of a large dataset without its feature arrays."""
    try:
        with h5py.File(path, "r") as f:
            check_h5_file(f, path)
            _read_root_attrs(f, path)
            return {split: {key: _read_value(group[key], path, f"{split}/{key}")
                            for key in keys if key in group}
                    for split, group in f.items() if isinstance(group, h5py.Group)}
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from None


def _write_root_attrs(f: h5py.File, ds: MMSADataset) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["synthetic"] = bool(ds.attrs.get("synthetic", False))
    f.attrs["label_bound"] = ds.label_bound
    if "preset" in ds.attrs:
        f.attrs["preset"] = str(ds.attrs["preset"])
    kept = {}
    for name, value in ds.attrs.items():
        try:
            json.dumps(value, default=_numpy_to_python)
        except (TypeError, ValueError):
            log.warning("dataset attribute %r (%s) is not JSON-serialisable; not stored",
                        name, type(value).__name__)
            continue
        kept[name] = value
    # The native attributes above are for h5dump and other tools; this one round-trips types.
    f.attrs["attrs_json"] = json.dumps(kept, default=_numpy_to_python)


def _numpy_to_python(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


def _read_root_attrs(f: h5py.File, path: Path) -> dict[str, Any]:
    name = f.attrs.get("format")
    if name != FORMAT_NAME:
        raise DatasetError(f"{path}: not a {FORMAT_NAME} HDF5 dataset (format attribute: {name!r})")
    version = int(f.attrs.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise DatasetError(f"{path}: format version {version} is newer than this code reads "
                           f"({FORMAT_VERSION}); upgrade mug-unilabels")
    attrs = json.loads(f.attrs.get("attrs_json", "{}"))
    attrs.setdefault("synthetic", bool(f.attrs["synthetic"]))
    attrs.setdefault("label_bound", float(f.attrs["label_bound"]))
    return attrs


def _write_value(group: h5py.Group, split: str, key: str, value: Any) -> None:
    where = f"{split}/{key}"
    if isinstance(value, list):
        data, item, dtype = _list_to_array(value, where)
        container = "list"
    elif isinstance(value, np.ndarray):
        data, item, dtype = value, "", value.dtype
        container = "ndarray"
        if value.dtype.kind in "OU":
            data, item = _strings(value, where), "str"
    else:
        raise DatasetError(f"{where}: cannot store a {type(value).__name__}; "
                           "expected a numpy array or a list")
    if data.dtype == object:
        dset = group.create_dataset(key, data=data, dtype=_STR)
    else:
        dset = group.create_dataset(key, data=data, chunks=_chunks(data))
    dset.attrs["container"] = container
    dset.attrs["dtype"] = np.dtype(dtype).str
    dset.attrs["item"] = item


def _chunks(data: np.ndarray) -> tuple[int, ...] | None:
    if data.ndim == 0 or data.size == 0:
        return None
    row_bytes = max(1, data[0].nbytes)
    rows = max(1, min(data.shape[0], _CHUNK_BYTES // row_bytes))
    return (rows, *data.shape[1:])


def _list_to_array(values: list, where: str) -> tuple[np.ndarray, str, np.dtype]:
    """The array stored for a list, the kind of its items, and the dtype to record."""
    kinds = {type(v) for v in values}
    if not kinds:
        return np.zeros(0), "empty", np.dtype(float)
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is str:
            return _strings(np.array(values, dtype=object), where), "str", np.dtype(object)
        if kind in (int, float, bool):
            try:
                data = np.array(values, dtype={int: np.int64, float: np.float64, bool: bool}[kind])
            except OverflowError:
                raise DatasetError(f"{where}: list holds integers beyond 64 bits") from None
            return data, kind.__name__, data.dtype
        if issubclass(kind, np.generic):
            data = np.array(values)
            if data.dtype.kind not in "OU" and all(v.dtype == data.dtype for v in values):
                return data, "numpy", data.dtype
    names = ", ".join(sorted(k.__name__ for k in {type(v) for v in values}))
    raise DatasetError(f"{where}: cannot store a list of {names}; expected one type of "
                       "python int, float, bool, str or numpy scalar")


def _strings(values: np.ndarray, where: str) -> np.ndarray:
    """An object array of the same shape holding str, checked to survive HDF5 UTF-8 strings."""
    out = values.astype(object)
    for index, text in enumerate(out.flat):
        if not isinstance(text, str):
            raise DatasetError(f"{where} index {index}: {type(text).__name__} in a string array; "
                               "only str can be stored")
        if "\x00" in text:
            raise DatasetError(f"{where} index {index}: string holds a NUL character, which "
                               "HDF5 strings cannot hold")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DatasetError(f"{where} index {index}: string is not valid unicode ({exc.reason})"
                               ) from None
    return out


def _read_value(dset: Any, path: Path, where: str) -> Any:
    if not isinstance(dset, h5py.Dataset):
        raise DatasetError(f"{path}: {where} is not a dataset")
    container = dset.attrs.get("container", "ndarray")
    item = dset.attrs.get("item", "")
    dtype = np.dtype(dset.attrs.get("dtype", dset.dtype.str))
    if item == "str":
        strings = np.asarray(dset.asstr()[()], dtype=object)
        if container == "list":
            return strings.tolist()
        return strings.astype(dtype)
    data = np.asarray(dset[()])
    if data.dtype != dtype:
        data = data.astype(dtype)
    if container == "ndarray":
        return data
    if item == "numpy":
        return list(data)
    if item in ("int", "float", "bool"):
        return data.tolist()
    if item == "empty":
        return []
    raise DatasetError(f"{path}: {where} has unknown item kind {item!r}")
