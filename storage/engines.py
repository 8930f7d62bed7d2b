"""Opening a store's database: SQLite and PostgreSQL engines, URLs, and the Alembic schema."""

import functools
import os
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from mugcore.errors import UserError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any 64-bit key, the same in every process: serialises first opens on PostgreSQL.
_PG_MIGRATION_LOCK = 0x6D75675F73746F72


def is_url(location: str | os.PathLike) -> bool:
    return "://" in str(location)


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at; None for a database that holds no store."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, write_engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration (nothing to do when it is there)."""
    config = _alembic_config()
    if schema_revision(engine) == _schema_head():
        return
    # Serialise concurrent first opens: BEGIN IMMEDIATE on SQLite, an advisory lock on
    # PostgreSQL. The loser then finds the schema at head and has nothing to do.
    with write_engine.begin() as conn:
        if write_engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@functools.cache
def _schema_head() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def check_location(location: str | os.PathLike, *, files: str | os.PathLike | None) -> None:
    """Could a store be opened (or made) at `location`? Checked before long work that ends by
    publishing to it; creates nothing. A PostgreSQL URL is connected to once."""
    from mugcore.outputs import check_output_dir

    if is_url(location):
        url = postgres_url(str(location))
        if files is None:
            raise UserError(f"store {redact(url)}: a PostgreSQL store needs a files "
                            "directory for its HDF5 files (--files DIR)")
        check_output_dir(Path(files), flag="--files")
        engine = create_engine(url)
        try:
            with engine.connect():
                pass
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise UserError(f"store {redact(url)}: cannot connect ({reason})") from None
        finally:
            engine.dispose()
    else:
        check_directory_files(location, files)
        check_output_dir(Path(location), flag="--store")


def check_directory_files(location: str | os.PathLike, files: str | os.PathLike | None) -> None:
    if files is not None and Path(files).resolve() != Path(location).resolve():
        raise UserError(f"--files is only for PostgreSQL stores; the directory store "
                        f"{location} keeps its files inside it")


def make_dir(path: Path, what: str) -> Path:
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot create it ({exc.strerror})") from exc
    return path.resolve()


def postgres_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    raise UserError(f"store URL {redact(url)}: unsupported scheme {scheme!r} "
                    "(use a directory or postgresql+psycopg://USER@HOST:PORT/DB)")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def sqlite_engine(url: str, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so that BEGIN is ours: deferred for
        # readers, IMMEDIATE for writers (a writer then waits for the lock up front instead of
        # failing with "database is locked" when it upgrades a read lock).
        dbapi_conn.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                       "busy_timeout=60000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine
