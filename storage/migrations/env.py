"""Alembic environment. The store runs migrations itself on open, on its own connection
(`config.attributes["connection"]`); the `alembic` command line is for making new revisions.
"""

from alembic import context
from sqlalchemy import create_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    # render_as_batch: SQLite can only change a table by copying it.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url (alembic -x or alembic.ini) to make a revision")
    with create_engine(url).connect() as conn:
        _run(conn)
