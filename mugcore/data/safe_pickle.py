"""A restricted unpickler for dataset files that may come from the network.

Unpickling can call any importable function, so `pickle.load` on an untrusted file is
remote code execution. `SafeUnpickler` resolves only the names that numpy arrays,
dtypes, scalars and plain containers need; any other global raises
`UnsafePickleError` before anything is called.
"""

import _compat_pickle
import pickle
from typing import IO, Any

from mugcore.errors import UnsafePickleError

_NUMPY_CORE = ("numpy.core", "numpy._core")  # numpy < 2 and numpy >= 2 spell the module differently

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {("numpy", "ndarray"), ("numpy", "dtype")}
    | {(f"{core}.multiarray", name) for core in _NUMPY_CORE for name in ("_reconstruct", "scalar")}
    # Protocol 5 pickles rebuild arrays through numpy's own frombuffer wrapper.
    | {(f"{core}.numeric", "_frombuffer") for core in _NUMPY_CORE}
    # Protocol 2 pickles written by Python 3 encode bytes (array data) through this.
    | {("_codecs", "encode")}
    | {("collections", "OrderedDict")}
    | {("builtins", name) for name in ("list", "dict", "tuple", "set", "frozenset", "str", "int",
                                       "float", "complex", "bytes", "bytearray", "bool", "slice")}
)


class SafeUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` admits only the names in `ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles name e.g. `__builtin__.list`; map them as pickle itself would.
        canonical = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        canonical = (_compat_pickle.IMPORT_MAPPING.get(canonical[0], canonical[0]), canonical[1])
        if canonical not in ALLOWED:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: the pickle reaches for something other than "
                "numpy arrays and plain containers")
        return super().find_class(*canonical)


def safe_load(file: IO[bytes]) -> Any:
    """Unpickle `file` admitting only numpy arrays, dtypes, scalars and plain containers.

    `encoding="latin1"` is what numpy needs to read arrays pickled by Python 2.
    """
    return SafeUnpickler(file, encoding="latin1").load()
