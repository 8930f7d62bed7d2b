"""`--store` / `--files` options shared by every command that opens a label store."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from mugcore.errors import UserError

if TYPE_CHECKING:  # SQLAlchemy loads when a store is opened, not for `labelgen --help`
    from storage.store import LabelStore


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="DIR_OR_URL", default=os.environ.get("MUG_STORE"),
        help="label store: a directory (SQLite + HDF5 files inside it) or "
             "a postgresql+psycopg://USER[:PASSWORD]@HOST:PORT/DB URL (then --files is needed); "
             "default: $MUG_STORE")
    parser.add_argument(
        "--files", metavar="DIR", default=os.environ.get("MUG_FILES"),
        help="directory for the HDF5 files of a PostgreSQL store, shared by every machine "
             "using it; default: $MUG_FILES")


def open_store(args: argparse.Namespace) -> LabelStore:
    """The existing store named by --store/--files: these commands read or delete, so a
    mistyped path is an error, not a new, empty store."""
    if not args.store:
        raise UserError("--store: no label store given (pass --store DIR_OR_URL or set MUG_STORE)")
    from storage.store import LabelStore

    return LabelStore.open(args.store, files=args.files, create=False)
