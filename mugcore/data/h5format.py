"""The project's HDF5 dataset format (layout documented in docs/dataset-format.md).

One group per split, one dataset per key. Each dataset records the container and
dtype the values had in memory (`container`, `dtype`, `item` attributes) so that
pickle -> HDF5 -> pickle returns the same arrays bit for bit.
"""

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import h5py
import numpy as np
from tqdm import tqdm

from mugcore.data.h5safety import OBJECT_BYTES, ReadBudget, check_h5_file
from mugcore.data.schema import MMSADataset
from mugcore.errors import DatasetError, shorten

log = logging.getLogger(__name__)

FORMAT_NAME = "mug-mmsa"
FORMAT_VERSION = 1
_CHUNK_BYTES = 1 << 20  # about 1 MiB per chunk: partial reads stay cheap, writes stay fast
_STR = h5py.string_dtype("utf-8")
# attrs_json is kept in the store's dataset row and returned by every listing.
MAX_ATTRS_JSON_BYTES = 64 << 10
ITEM_KINDS = ("", "str", "int", "float", "bool", "numpy", "empty")
T = TypeVar("T")


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
    def read(f: h5py.File, budget: ReadBudget) -> MMSADataset:
        attrs = _read_root_attrs(f, path)
        splits: dict[str, dict[str, Any]] = {}
        # Names first, then objects: h5py's items() generators hold its global lock between
        # yields, and one left suspended by an exception (its frame kept by the traceback)
        # would keep that lock from every other thread for good.
        for split in list(f.keys()):
            group = f[split]
            if not isinstance(group, h5py.Group):
                raise DatasetError(f"{path}: '{split}' is not a group of per-clip datasets")
            splits[split] = {key: _read_value(group[key], path, f"{split}/{key}", budget)
                             for key in list(group.keys())}
        return MMSADataset(splits=splits, attrs=attrs)
    return _read_file(path, read)


def read_h5_keys(path: Path, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Only `keys` of each split (keys a split lacks are left out): a partial read, e.g. the
    raw texts of a large dataset without its feature arrays."""
    def read(f: h5py.File, budget: ReadBudget) -> dict[str, dict[str, Any]]:
        _read_root_attrs(f, path)
        out = {}
        for split in list(f.keys()):
            group = f[split]
            if isinstance(group, h5py.Group):
                out[split] = {key: _read_value(group[key], path, f"{split}/{key}", budget)
                              for key in keys if key in group}
        return out
    return _read_file(path, read)


def _read_file(path: Path, read: Callable[[h5py.File, ReadBudget], T]) -> T:
    """`read(f, budget)` on the checked file; every failure a `DatasetError` with a plain
    message. The error is raised anew outside the `except` clause, without the traceback of
    the read: that traceback holds h5py objects, and whatever formats or frees it later (an
    error handler, on another thread) must not have to touch h5py."""
    error: DatasetError | None = None
    try:
        with h5py.File(path, "r") as f:
            check_h5_file(f, path)
            return read(f, ReadBudget(path))
    except DatasetError as exc:
        error = DatasetError(str(exc), exc.problems)
    except OSError as exc:  # not HDF5 at all, or a damaged file
        error = DatasetError(f"{path}: not a readable HDF5 file ({shorten(str(exc), 200)})")
    except Exception as exc:  # whatever else a malformed file makes h5py or numpy raise
        error = DatasetError(f"{path}: unreadable HDF5 dataset ({type(exc).__name__}: "
                             f"{shorten(str(exc), 200)})")
    raise error


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
    if not (isinstance(name, str) and name == FORMAT_NAME):
        raise DatasetError(f"{path}: not a {FORMAT_NAME} HDF5 dataset (format attribute: "
                           f"{shorten(name)})")
    version = f.attrs.get("format_version", 0)
    if not isinstance(version, int | np.integer) or isinstance(version, bool | np.bool_):
        raise DatasetError(f"{path}: root attribute format_version: expected an integer, got "
                           f"{shorten(version)}")
    if version > FORMAT_VERSION:
        raise DatasetError(f"{path}: format version {version} is newer than this code reads "
                           f"({FORMAT_VERSION}); upgrade mug-unilabels")
    attrs = _attrs_json(f.attrs.get("attrs_json", "{}"), path)
    if "synthetic" not in attrs:
        synthetic = f.attrs.get("synthetic")
        if not isinstance(synthetic, bool | np.bool_):
            raise DatasetError(f"{path}: root attribute synthetic: expected true or false, got "
                               f"{shorten(synthetic)}")
        attrs["synthetic"] = bool(synthetic)
    if "label_bound" not in attrs:
        bound = f.attrs.get("label_bound")
        if not isinstance(bound, int | float | np.integer | np.floating) or isinstance(
                bound, bool | np.bool_):
            raise DatasetError(f"{path}: root attribute label_bound: expected a number, got "
                               f"{shorten(bound)}")
        attrs["label_bound"] = float(bound)  # its value is checked with the data (validate)
    return attrs


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _attrs_json(raw: Any, path: Path) -> dict[str, Any]:
    """The `attrs_json` root attribute: a JSON object of at most MAX_ATTRS_JSON_BYTES (it is
    kept in the store's dataset row and shown with every listing)."""
    where = f"{path}: root attribute attrs_json"
    if not isinstance(raw, str):
        raise DatasetError(f"{where}: expected a JSON string, got {shorten(raw)}")
    # Characters first: a 20 MB string is refused without encoding a copy of it.
    size = len(raw) if len(raw) > MAX_ATTRS_JSON_BYTES else len(raw.encode("utf-8",
                                                                           "surrogatepass"))
    if size > MAX_ATTRS_JSON_BYTES:
        raise DatasetError(f"{where}: at least {size} bytes, more than the "
                           f"{MAX_ATTRS_JSON_BYTES} this format allows")
    try:
        attrs = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise DatasetError(f"{where}: nested too deeply") from None
    except ValueError as exc:
        raise DatasetError(f"{where}: not valid JSON ({shorten(str(exc), 100)})") from None
    if not isinstance(attrs, dict):
        raise DatasetError(f"{where}: expected a JSON object, got a {type(attrs).__name__}")
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


def _text_attr(dset: h5py.Dataset, name: str, default: str, allowed: tuple[str, ...],
               path: Path, where: str) -> str:
    value = dset.attrs.get(name, default)
    if isinstance(value, bytes):  # a fixed-length string attribute, as other tools write them
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or value not in allowed:
        raise DatasetError(f"{path}: {where}: attribute {name} is {shorten(value)}; expected "
                           f"one of {', '.join(repr(a) for a in allowed)}")
    return value


def _read_value(dset: Any, path: Path, where: str, budget: ReadBudget) -> Any:
    if not isinstance(dset, h5py.Dataset):
        raise DatasetError(f"{path}: {where} is not a dataset")
    container = _text_attr(dset, "container", "ndarray", ("ndarray", "list"), path, where)
    item = _text_attr(dset, "item", "", ITEM_KINDS, path, where)
    try:
        dtype = np.dtype(dset.attrs.get("dtype", dset.dtype.str))
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: {where}: unreadable dtype attribute "
                           f"{shorten(dset.attrs.get('dtype'))}") from None
    variable = dset.dtype.kind == "O"  # variable-length data: strings, or sequences
    if item == "str":
        if not variable or h5py.check_string_dtype(dset.dtype) is None or \
                dtype.kind not in "OU":
            raise DatasetError(f"{path}: {where}: item 'str' needs variable-length strings "
                               f"recorded as dtype |O or <U, not {dset.dtype} as {dtype}")
        strings = _read_strings(dset, path, where, budget)
        if container == "list":
            return strings.tolist()
        if dtype.kind == "U":  # astype would cut longer strings short, silently
            width = dtype.itemsize // 4
            long = next((i for i, t in enumerate(strings.flat) if len(t) > width), None)
            if long is not None:
                raise DatasetError(f"{path}: {where} index {long}: string longer than the "
                                   f"{width} characters of its dtype attribute {dtype.str}")
            budget.charge(strings.size * dtype.itemsize, where)
        return strings.astype(dtype)
    if variable or dtype.kind == "O":
        # A Python object per element (a float made from each number) costs many times the
        # bytes the file holds: only strings are stored that way.
        raise DatasetError(f"{path}: {where}: dtype {dset.dtype} recorded as {dtype} with item "
                           f"{item!r}; objects are only stored as strings (item 'str')")
    budget.charge(int(dset.size) * max(dset.dtype.itemsize, dtype.itemsize), where)
    data = np.asarray(dset[()])
    if data.dtype != dtype:
        data = data.astype(dtype)
    if container == "ndarray":
        return data
    if item in ("numpy", "int", "float", "bool"):
        budget.charge(data.size * OBJECT_BYTES, where)  # a Python object per element
        return list(data) if item == "numpy" else data.tolist()
    if item == "empty":
        return []
    raise DatasetError(f"{path}: {where} has item kind {item!r}, which a list cannot hold")


def _read_strings(dset: h5py.Dataset, path: Path, where: str, budget: ReadBudget) -> np.ndarray:
    """Decode a string dataset a block of rows at a time, charging each block's strings
    before the next is read: one stored string may be referenced by many elements, so their
    size is known only as they are read. A block holds at most what the rest of the budget
    allows if every element were as large as the file."""
    out = np.empty(dset.shape, dtype=object)
    flat_out = out.reshape(-1)
    rows = dset.shape[0] if dset.ndim else 1
    per_row = max(1, int(np.prod(dset.shape[1:]))) if dset.ndim else 1
    done = 0
    while done < rows:
        step = max(1, min(rows - done, budget.remaining // (per_row * max(1, budget.file_size))))
        raw = np.asarray(dset[done:done + step] if dset.ndim else dset[()], dtype=object)
        texts = []
        for offset, value in enumerate(raw.reshape(-1).tolist()):
            try:
                texts.append(value.decode("utf-8") if isinstance(value, bytes) else str(value))
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{path}: {where} index {done * per_row + offset}: not "
                                   f"valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        budget.charge_strings(texts, where)
        flat_out[done * per_row:done * per_row + len(texts)] = texts
        done += step
    return out
