"""A restricted unpickler for dataset files that may come from the network.

Unpickling can call any importable function, so `pickle.load` on an untrusted file is
remote code execution. `SafeUnpickler` resolves only the names that numpy arrays,
dtypes, scalars and plain containers need; any other global raises
`UnsafePickleError` before anything is called.

Even those names can be made to allocate: `bytearray(1 << 29)` builds 512 MiB from a few
bytes of pickle, `list(x)` called again and again on one memoised object copies it each
time, `ndarray` shapes can be anything. So every admitted callable (and every array's
`__setstate__`) first charges what it is about to build to a budget: a fixed floor plus a
small multiple of the file's size, which no honest pickle comes near. Going over it is an
`UnsafePickleError`, raised before the allocation.
"""

import _compat_pickle
import io
import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from mugcore.data.budget import Budget
from mugcore.errors import DatasetError, UnsafePickleError

_NUMPY_CORE = ("numpy.core", "numpy._core")  # numpy < 2 and numpy >= 2 spell the module differently

# What the admitted calls may build in all: a floor, plus this many times the file's size (an
# honest file builds about its own size: each array's bytes, once).
BUDGET_FLOOR_BYTES = 64 << 20
BUDGET_PER_FILE_BYTE = 4

_POINTER = 8  # bytes per item of a list or tuple
_HASHED = 64  # bytes per item of a dict or set, about

Cost = Callable[..., int]


def _items(per_item: int) -> Cost:
    def cost(*args: Any) -> int:
        return sum(per_item * len(a) for a in args if hasattr(a, "__len__"))
    return cost


def _byte_string(source: Any = b"", *_: Any) -> int:
    """bytes(n) and bytearray(n) allocate n; from anything sized, up to 4 bytes per item."""
    if isinstance(source, int):
        return max(source, 0)
    return 4 * len(source) if hasattr(source, "__len__") else 0


def _text(value: Any = "", *_: Any) -> int:
    return 4 * len(value) if hasattr(value, "__len__") else 0


def _encode(text: Any, encoding: str = "utf-8", *_: Any) -> int:
    per_char = 1 if str(encoding).lower() in ("latin1", "latin-1", "ascii") else 4
    return per_char * len(text) if hasattr(text, "__len__") else 0


def _array_bytes(shape: Any, dtype: Any) -> int:
    """Bytes of an array of `shape` and `dtype` as the pickle states them; refuses anything
    that is not a plain shape and dtype rather than guess."""
    dims = (shape,) if isinstance(shape, int) else shape
    if not isinstance(dims, tuple | list) or not all(isinstance(d, int) for d in dims):
        raise UnsafePickleError(f"refused an array of shape {shape!r}: not a tuple of integers")
    try:
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        raise UnsafePickleError(f"refused an array of dtype {dtype!r}") from None
    return math.prod(max(d, 0) for d in dims) * max(itemsize, 1)


def _reconstruct(_subtype: Any, shape: Any, dtype: Any, *_: Any) -> int:
    return _array_bytes(shape, dtype)


def _scalar(dtype: Any, *_: Any) -> int:
    return dtype.itemsize if isinstance(dtype, np.dtype) else 0


def _free(*_: Any) -> int:
    return 0


# Every admitted global, with what calling it builds. `numpy.ndarray` is admitted as a guarded
# subclass instead (see `_guarded_ndarray`); `_frombuffer` returns a view of a buffer the pickle
# has already built.
ALLOWED_COSTS: dict[tuple[str, str], Cost] = {
    ("numpy", "dtype"): _free,
    **{(f"{core}.multiarray", "_reconstruct"): _reconstruct for core in _NUMPY_CORE},
    **{(f"{core}.multiarray", "scalar"): _scalar for core in _NUMPY_CORE},
    # Protocol 5 pickles rebuild arrays through numpy's own frombuffer wrapper.
    **{(f"{core}.numeric", "_frombuffer"): _free for core in _NUMPY_CORE},
    # Protocol 2 pickles written by Python 3 encode bytes (array data) through this.
    ("_codecs", "encode"): _encode,
    ("collections", "OrderedDict"): _items(_HASHED),
    **{("builtins", name): _items(_POINTER) for name in ("list", "tuple")},
    **{("builtins", name): _items(_HASHED) for name in ("dict", "set", "frozenset")},
    ("builtins", "str"): _text,
    **{("builtins", name): _byte_string for name in ("bytes", "bytearray")},
    **{("builtins", name): _free for name in ("int", "float", "complex", "bool", "slice")},
}
ALLOWED: frozenset[tuple[str, str]] = frozenset({("numpy", "ndarray"), *ALLOWED_COSTS})


def _budget(limit: int) -> Budget:
    return Budget(limit, lambda what: UnsafePickleError(
        f"refused to build {what}: the pickle would make the reader allocate more than "
        f"{limit >> 20} MiB ({BUDGET_PER_FILE_BYTE}x its size plus "
        f"{BUDGET_FLOOR_BYTES >> 20} MiB)"))


class _GuardedArray(np.ndarray):
    """Stands in for `numpy.ndarray` while unpickling; `safe_load` turns every instance back
    into a plain ndarray."""

    budget: Budget

    def __new__(cls, shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> Any:
        cls.budget.charge(_array_bytes(shape, dtype), "an array")
        return super().__new__(cls, shape, dtype, *args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        # (version, shape, dtype, is_fortran, data), the version being optional.
        parts = state[1:] if isinstance(state, tuple) and len(state) == 5 else state
        if not isinstance(parts, tuple) or len(parts) != 4:
            raise UnsafePickleError("refused an array: malformed pickled state")
        self.budget.charge(_array_bytes(parts[0], parts[1]), "an array")
        super().__setstate__(state)


def _guarded_ndarray(budget: Budget) -> type[_GuardedArray]:
    return type("ndarray", (_GuardedArray,), {"budget": budget})


def _guarded_call(target: Callable[..., Any], cost: Cost, budget: Budget,
                  name: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        budget.charge(cost(*args), f"{name}(...)")
        return target(*args)
    return call


class SafeUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` admits only the names in `ALLOWED`, each guarded
    by a budget of `max_bytes` for everything the admitted calls build."""

    def __init__(self, file: IO[bytes], *, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._budget = _budget(max_bytes)
        self._ndarray = _guarded_ndarray(self._budget)

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles name e.g. `__builtin__.list`; map them as pickle itself would.
        canonical = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        canonical = (_compat_pickle.IMPORT_MAPPING.get(canonical[0], canonical[0]), canonical[1])
        if canonical not in ALLOWED:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: the pickle reaches for something other than "
                "numpy arrays and plain containers")
        if canonical == ("numpy", "ndarray"):
            return self._ndarray
        target = super().find_class(*canonical)
        return _guarded_call(target, ALLOWED_COSTS[canonical], self._budget, ".".join(canonical))


def safe_load(file: IO[bytes], *, max_bytes: int | None = None) -> Any:
    """Unpickle `file` admitting only numpy arrays, dtypes, scalars and plain containers, and
    building at most `max_bytes` through calls (default: from the file's size, see above).

    `encoding="latin1"` is what numpy needs to read arrays pickled by Python 2.
    """
    if max_bytes is None:
        max_bytes = BUDGET_FLOOR_BYTES + BUDGET_PER_FILE_BYTE * _size_of(file)
    return _plain(SafeUnpickler(file, max_bytes=max_bytes, encoding="latin1").load(), set())


def load_path(path: Path, *, shown: str | None = None) -> Any:
    """`safe_load` of the file at `path`; every failure a DatasetError (an UnsafePickleError
    for a refused object) whose message starts with `shown` (default: the path)."""
    shown = str(path) if shown is None else shown
    try:
        with open(path, "rb") as f:
            return safe_load(f)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{shown}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # whatever a malformed pickle makes fail is the file's fault
        raise DatasetError(
            f"{shown}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def _size_of(file: IO[bytes]) -> int:
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        here = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(here)
        return end


def _plain(value: Any, seen: set[int]) -> Any:
    """`value` with every guarded array replaced by a plain ndarray view of it."""
    if isinstance(value, _GuardedArray):
        value = value.view(np.ndarray)
    if id(value) in seen:
        return value
    if isinstance(value, dict | list | np.ndarray):
        seen.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _plain(item, seen)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = _plain(item, seen)
    elif isinstance(value, tuple):
        return tuple(_plain(item, seen) for item in value)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for i, item in enumerate(value.flat):
            if isinstance(item, dict | list | tuple | np.ndarray):
                value.flat[i] = _plain(item, seen)
    return value
