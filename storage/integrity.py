"""Are the store's files what its rows say they are?

A label-set file is immutable and its sha256 is in its row: it is checked before the file is
read or served, once per change of the file (size, mtime) and process. A features file has no
recorded hash; it is checked by opening it with HDF5, which finds a truncated or overwritten
file (its superblock records where the file ends). Damage found is remembered by the store
object, so that `/readyz` reports it, and `labelgen store check` checks every file.

A damaged file is a `DamagedStore` error naming the file and what is wrong: one line in the
CLI, a 503 in the API. A file whose row is there but which is gone is damage too when the
store is checked; a request for it is a NotFound (it may have been deleted meanwhile).
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
from sqlalchemy import select

from storage.errors import DamagedStore, NotFound
from storage.files import sha256_file
from storage.models import Dataset, LabelSet

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Damage:
    file: str  # relative to the store's file root
    what: str  # "label set 3", "dataset mosi"
    problem: str

    def __str__(self) -> str:
        return f"{self.file} ({self.what}): {self.problem}"


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


class IntegrityMixin:
    """File checks of `LabelStore` (which provides the root, the sessions and the two dicts)."""

    root: Path
    _verdict_lock: threading.Lock
    # rel file -> (stat key the verdict holds for, problem or None)
    _verdicts: dict[str, tuple[tuple[int, int], str | None]]

    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[Session]: ...

    def _verdict(self, rel: str, check: Callable[[Path], str | None]) -> str | None:
        """The problem of file `rel` (None: sound), computed again only when it changed."""
        path = self.root / rel
        key = _stat_key(path)
        if key is None:
            return "missing"
        with self._verdict_lock:
            known = self._verdicts.get(rel)
        if known is not None and known[0] == key:
            return known[1]
        problem = check(path)
        with self._verdict_lock:
            self._verdicts[rel] = (key, problem)
        return problem

    def verified_label_file(self, label_set_id: int, rel: str, sha256: str) -> Path:
        """The path of a label-set file whose content is what its row records."""
        problem = self._verdict(rel, lambda path: _label_file_problem(path, sha256))
        if problem == "missing":
            raise NotFound(f"label set {label_set_id}: its file {rel} is gone (deleted "
                           "meanwhile?)")
        if problem is not None:
            raise DamagedStore(f"label set {label_set_id}: its file {rel} is damaged "
                               f"({problem}); `labelgen store check` lists every damaged file")
        return self.root / rel

    def verified_features_file(self, name: str, rel: str) -> Path:
        problem = self._verdict(rel, _features_file_problem)
        if problem is not None:
            raise DamagedStore(f"dataset {name}: its features file {rel} is {problem}; "
                               "`labelgen store check` lists every damaged file")
        return self.root / rel

    def find_damage(self, *, deep: bool) -> list[Damage]:
        """Every file the rows name that is missing or damaged. `deep=False` (readiness): label
        files are hashed only if never checked by this process; features files are opened."""
        with self._read() as s:
            label_sets = s.execute(select(LabelSet.id, LabelSet.file, LabelSet.file_sha256)).all()
            datasets = s.execute(select(Dataset.name, Dataset.features_file)).all()
        found = []
        for ls in label_sets:
            if deep:
                problem = self._verdict(ls.file, lambda p, sha=ls.file_sha256:
                                        _label_file_problem(p, sha))
            else:
                problem = self._known_or_missing(ls.file)
            if problem is not None:
                found.append(Damage(ls.file, f"label set {ls.id}", problem))
        for ds in datasets:
            problem = self._verdict(ds.features_file, _features_file_problem)
            if problem is not None:
                found.append(Damage(ds.features_file, f"dataset {ds.name}", problem))
        return found

    def _known_or_missing(self, rel: str) -> str | None:
        key = _stat_key(self.root / rel)
        if key is None:
            return "missing"
        with self._verdict_lock:
            known = self._verdicts.get(rel)
        return known[1] if known is not None and known[0] == key else None


def _label_file_problem(path: Path, sha256: str) -> str | None:
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if actual != sha256:
        return f"sha256 {actual[:12]}... differs from the {sha256[:12]}... recorded at publication"
    return None


def _features_file_problem(path: Path) -> str | None:
    try:
        with h5py.File(path, "r", locking=False) as f:
            if f.attrs.get("format") is None:
                return "not a dataset file (no format attribute)"
    except OSError as exc:  # truncated, overwritten, unreadable: HDF5 says which
        return f"unreadable as HDF5 ({str(exc).split(';')[0][:200]})"
    return None
