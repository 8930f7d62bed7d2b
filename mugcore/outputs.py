"""Checks of a command's outputs, made before any work starts, so that a long run never ends in
a PermissionError (or a FileExistsError) once its work is done. Each problem is a `UserError`
naming the flag."""

import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from mugcore.errors import UserError


def check_writable_dir(directory: Path, *, flag: str, shown: Path) -> None:
    """`directory` exists and a file can be created in it (tried, not guessed from modes: root
    passes every mode check, and read-only mounts pass them all)."""
    if not directory.is_dir():
        raise UserError(f"{flag} {shown}: directory {directory} does not exist")
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".mug-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{flag} {shown}: cannot write in {directory} "
                        f"({exc.strerror or exc})") from None


def check_new_file(path: Path, *, flag: str, force: bool) -> None:
    """An output file: not a directory, not there already unless `force`, its directory
    writable."""
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory, not a file")
    if path.exists() and not force:
        raise UserError(f"{flag} {path}: file exists (use --force to overwrite)")
    check_writable_dir(path.parent, flag=flag, shown=path)


def check_output_dir(path: Path, *, flag: str) -> None:
    """An output directory, made if missing: not a file, and writable (or, when missing, its
    nearest existing parent is)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    check_writable_dir(parent, flag=flag, shown=path)


def refuse_symlinks(paths: Iterable[Path], *, flag: str) -> None:
    """A command that writes files by name inside its output directory would follow a link
    planted there (dangling or not) and create or overwrite its target: refuse any such link
    before work starts."""
    for path in paths:
        if path.is_symlink():
            raise UserError(f"{flag} {path}: is a symbolic link (to {os.readlink(path)}); "
                            "outputs are written as files of their own, never through a link: "
                            "remove it")


def replace_file(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` to a temporary name beside `path`, then rename it over `path`: the rename
    replaces a link that appeared at `path` instead of writing through it, and a reader never
    sees half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
