"""Files of the label store: immutable label-set HDF5 files, published atomically.

A label set is encoded in memory, written to `.tmp-<uuid>.h5`, fsynced, renamed to its final
name and the directory fsynced; only then does the store commit its SQL row. The writer holds
an exclusive `flock` on the file from creation until after that commit, so a cleaner that can
take the lock knows the writer is gone: a temp file, or a final file that no row names, is
then garbage. Readers reach files only through committed rows, so they never see a partial one.
"""

import fcntl
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mugcore.data.io import fsync_path
from storage.errors import NotFound
from storage.uncertainty import UNCERTAINTY_KEYS, has_uncertainty

LABEL_FORMAT = "mug-labelset"
# 2: optional per-clip uncertainty arrays (storage.uncertainty); version 1 files still read.
LABEL_FORMAT_VERSION = 2
LABEL_KEYS = ("clip_id", "split", "multimodal", "text", "audio", "vision")
VALUE_KEYS = ("multimodal", "text", "audio", "vision")
TEMP_PREFIX = ".tmp-"


def encode_label_set(arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> bytes:
    """The HDF5 bytes of one label set; `arrays` in dataset position order, with the nine
    uncertainty arrays or none of them."""
    uncertainty = UNCERTAINTY_KEYS if has_uncertainty(arrays) else ()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = LABEL_FORMAT
        f.attrs["format_version"] = LABEL_FORMAT_VERSION
        f.attrs["n_clips"] = len(arrays["clip_id"])
        # JSON keeps nested provenance readable by any HDF5 tool without pickles.
        f.attrs["meta"] = json.dumps(attrs, sort_keys=True, default=str)
        for key in ("clip_id", "split"):
            f.create_dataset(key, data=np.char.encode(arrays[key].astype(str), "utf-8"))
        for key in VALUE_KEYS:
            f.create_dataset(key, data=arrays[key])
        for key in uncertainty:
            f.create_dataset(key, data=np.asarray(arrays[key], dtype=np.float32))
    return buffer.getvalue()


def read_label_file(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a label-set file (the uncertainty arrays too where it has them); raises
    NotFound if it is gone (deleted meanwhile), OSError if it is not one this code can read."""
    try:
        # Published files never change, so HDF5's own file locks are not needed (and fail on
        # some network filesystems).
        with h5py.File(path, "r", locking=False) as f:
            version = int(f.attrs.get("format_version", 1))
            if version > LABEL_FORMAT_VERSION:
                raise OSError(f"label-set file {path} has format version {version}; this "
                              f"code reads up to {LABEL_FORMAT_VERSION} (upgrade mug-unilabels)")
            n = int(f.attrs["n_clips"])
            keys = LABEL_KEYS + tuple(k for k in UNCERTAINTY_KEYS if k in f)
            out = {key: f[key][()] for key in keys}
    except FileNotFoundError as exc:
        raise NotFound(f"label-set file {path.name} is gone (deleted meanwhile?)") from exc
    for key in ("clip_id", "split"):
        out[key] = _decode_utf8(out[key])
    if 0 < len(out) - len(LABEL_KEYS) < len(UNCERTAINTY_KEYS):
        raise OSError(f"label-set file {path} is inconsistent: some uncertainty arrays missing")
    if any(len(v) != n for v in out.values()):
        raise OSError(f"label-set file {path} is inconsistent: lengths differ from n_clips={n}")
    return out


def _decode_utf8(raw: np.ndarray) -> np.ndarray:
    """Fixed-width UTF-8 bytes -> str array. ASCII (the usual clip id) widens byte by byte into
    numpy's UCS-4 in well under a millisecond; np.char.decode takes ~70 ms for MOSEI's ids."""
    if raw.size == 0 or raw.dtype.itemsize == 0:
        return raw.astype(str)
    octets = np.ascontiguousarray(raw).view(np.uint8)
    if (octets < 128).all():
        return octets.astype(np.uint32).view(f"<U{raw.dtype.itemsize}")
    return np.char.decode(raw, "utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class PublishedFile:
    """A renamed, fsynced file whose writer still holds its lock (until `release`)."""

    path: Path
    sha256: str
    _fd: int

    def release(self) -> None:
        """The SQL row is committed: let go of the lock."""
        os.close(self._fd)

    def discard(self) -> None:
        """The SQL commit failed: remove the file, then let go of the lock."""
        try:
            self.path.unlink(missing_ok=True)
            fsync_path(self.path.parent)
        finally:
            os.close(self._fd)


def write_locked(directory: Path, data: bytes, *, suffix: str = ".h5") -> PublishedFile:
    """Write `data` atomically to a new file in `directory`, keeping it locked (see module doc)."""
    name = uuid.uuid4().hex
    temp = directory / f"{TEMP_PREFIX}{name}{suffix}"
    final = directory / f"{name}{suffix}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.rename(temp, final)
        fsync_path(directory)
    except BaseException:
        temp.unlink(missing_ok=True)
        os.close(fd)
        raise
    return PublishedFile(final, hashlib.sha256(data).hexdigest(), fd)


def _try_lock(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _candidates(directory: Path, suffix: str) -> Iterator[Path]:
    if directory.is_dir():
        yield from (p for p in directory.iterdir() if p.is_file() and p.name.endswith(suffix))


def clean_stray_files(directory: Path, is_referenced: Callable[[Path], bool], *,
                      grace_s: float, suffix: str = ".h5") -> list[Path]:
    """Delete files in `directory` left by dead writers: temp files, and final files no SQL row
    names. A file is only judged while holding its lock, and `is_referenced` is asked then, so a
    live writer's file (locked) and a just-committed one (referenced) are both left alone.
    `grace_s` spares files younger than that (a writer between create and lock)."""
    removed = []
    now = time.time()
    for path in _candidates(directory, suffix):
        try:
            if now - path.stat().st_mtime < grace_s:
                continue
        except FileNotFoundError:
            continue
        is_temp = path.name.startswith(TEMP_PREFIX)
        # Never lock a file in use: HDF5 readers that lock files would fail meanwhile.
        if not is_temp and is_referenced(path):
            continue
        fd = _try_lock(path)
        if fd is None:
            continue
        try:
            if is_temp or not is_referenced(path):
                path.unlink(missing_ok=True)
                removed.append(path)
        finally:
            os.close(fd)
    if removed:
        fsync_path(directory)
    return removed
