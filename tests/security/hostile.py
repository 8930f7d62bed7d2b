"""Hostile dataset files, built from a valid project HDF5 file or from nothing: each tries to
read bytes from outside the upload, or to make the reader allocate far more than it was sent.
SECRET is what an attacker wants to read; no refused file may ever bring it into the store."""

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

# ASCII text, as /etc/passwd is: read as float32 features it is finite, so only the reader
# itself, not validation, can stop it.
SECRET = b"root:x:0:0:TOPSECRET-6f1d:/root:/bin/bash\n"
TARGET = "train/audio"  # the dataset each HDF5 variant replaces


def secret_file(directory: Path, nbytes: int) -> Path:
    path = directory / "secret.txt"
    path.write_bytes((SECRET * (nbytes // len(SECRET) + 1))[:nbytes])
    return path


def _outside_h5(directory: Path, shape: tuple[int, ...], group: str = "/") -> Path:
    """Another HDF5 file holding the secret as float32 features at `{group}/leak`."""
    path = directory / "outside.h5"
    nbytes = int(np.prod(shape)) * 4
    data = np.frombuffer(secret_file(directory, nbytes).read_bytes(), dtype="<f4").reshape(shape)
    with h5py.File(path, "w") as f:
        f.require_group(group).create_dataset("leak", data=data)
    return path


def _replace(valid: Path, out: Path, build: Callable[[h5py.File, h5py.Dataset], None]) -> Path:
    shutil.copy(valid, out)
    with h5py.File(out, "r+") as f:
        old = f[TARGET]
        attrs = dict(old.attrs)
        shape, dtype = old.shape, old.dtype
        del f[TARGET]
        build(f, _Spec(shape, dtype))  # type: ignore[arg-type]
        if isinstance(f.get(TARGET, getlink=True), h5py.HardLink):
            f[TARGET].attrs.update(attrs)
    return out


class _Spec:
    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape, self.dtype = shape, dtype
        self.nbytes = int(np.prod(shape)) * dtype.itemsize


def external_storage(valid: Path, out: Path) -> Path:
    """`train/audio` whose raw data is an outside file (HDF5 external storage)."""
    def build(f: h5py.File, old: _Spec) -> None:
        secret = secret_file(out.parent, old.nbytes)
        f.create_dataset(TARGET, shape=old.shape, dtype=old.dtype,
                         external=[(str(secret), 0, h5py.h5f.UNLIMITED)])
    return _replace(valid, out, build)


def external_link(valid: Path, out: Path) -> Path:
    """`train/audio` is an external link to a dataset in another file."""
    def build(f: h5py.File, old: _Spec) -> None:
        f[TARGET] = h5py.ExternalLink(str(_outside_h5(out.parent, old.shape)), "/leak")
    return _replace(valid, out, build)


def soft_link_out(valid: Path, out: Path) -> Path:
    """`train/audio` is a soft link that resolves, through an external link, outside."""
    def build(f: h5py.File, old: _Spec) -> None:
        f["train/audio_src"] = h5py.ExternalLink(str(_outside_h5(out.parent, old.shape)),
                                                 "/leak")
        f[TARGET] = h5py.SoftLink("/train/audio_src")
    return _replace(valid, out, build)


def virtual_dataset(valid: Path, out: Path) -> Path:
    """`train/audio` is a virtual dataset mapping another file's data."""
    def build(f: h5py.File, old: _Spec) -> None:
        source = _outside_h5(out.parent, old.shape)
        layout = h5py.VirtualLayout(shape=old.shape, dtype="<f4")
        layout[...] = h5py.VirtualSource(str(source), "leak", shape=old.shape)
        f.create_virtual_dataset(TARGET, layout)
    return _replace(valid, out, build)


def unknown_filter(valid: Path, out: Path) -> Path:
    """`train/audio` passes through a filter (id 32123) this reader does not know: a filter
    plugin would be code loaded from the server's plugin path."""
    def build(f: h5py.File, old: _Spec) -> None:
        f.create_dataset(TARGET, data=np.zeros(old.shape, old.dtype), chunks=old.shape,
                         compression=32123, allow_unknown_filter=True)
    return _replace(valid, out, build)


def fill_value_bomb(valid: Path, out: Path) -> Path:
    """`train/audio` declares 2 GiB that no chunk holds: reading it would fill them all."""
    def build(f: h5py.File, old: _Spec) -> None:
        f.create_dataset(TARGET, shape=(1 << 28,), dtype="<f8", chunks=(1 << 16,))
    return _replace(valid, out, build)


HDF5_VARIANTS: dict[str, Callable[[Path, Path], Path]] = {
    "external-storage": external_storage,
    "external-link": external_link,
    "soft-link-out": soft_link_out,
    "virtual-dataset": virtual_dataset,
    "unknown-filter": unknown_filter,
    "fill-value-bomb": fill_value_bomb,
}


class _Alloc:
    """Unpickles as `bytearray(1 << 29)`: 512 MiB from a few bytes of pickle."""

    def __reduce__(self) -> tuple:
        return bytearray, (1 << 29,)


class _Copy:
    """Unpickles as `list(big)`, where `big` is one memoised 1 MiB bytes object: each copy
    costs 8 MiB of list and 5 bytes of pickle."""

    big = b"\x01" * (1 << 20)

    def __reduce__(self) -> tuple:
        return list, (self.big,)


def pickle_bombs() -> dict[str, bytes]:
    return {
        "bytearray-from-int": pickle.dumps([_Alloc(), _Alloc()], protocol=4),
        "copies-of-a-memo": pickle.dumps([_Copy() for _ in range(160)], protocol=4),
    }
