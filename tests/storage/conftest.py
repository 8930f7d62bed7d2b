"""Store fixtures: every store test runs on SQLite and on a throwaway PostgreSQL cluster.

PostgreSQL comes from $MUG_TEST_PG_URL (CI starts it with scripts/pg_cluster.sh), or else this
fixture starts a cluster itself with that script. If neither works the PostgreSQL tests fail
when MUG_REQUIRE_PG=1 (CI) and are skipped otherwise.
"""

import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from mugcore.data.schema import MMSADataset
from storage import LabelStore
from storage.testing import random_dataset

REPO = Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO / "scripts" / "pg_cluster.sh"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("MUG_TEST_PG_URL")
    if url:
        yield url
        return
    cluster = tempfile.mkdtemp(prefix="mug-pg-")  # under /tmp: the postgres user must reach it
    proc = subprocess.run([str(PG_SCRIPT), "start", cluster], capture_output=True, text=True)
    if proc.returncode != 0:
        why = f"no PostgreSQL for the store tests: {proc.stderr.strip()[-500:]}"
        if os.environ.get("MUG_REQUIRE_PG") == "1":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield proc.stdout.strip()
    finally:
        subprocess.run([str(PG_SCRIPT), "stop", cluster], check=False)


def fresh_pg_database(server_url: str) -> str:
    """A new empty database on the test server; its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@dataclass(frozen=True)
class StoreSpec:
    """Where a test store lives; `open()` gives a new LabelStore on it (as a new process would)."""

    backend: str
    location: str
    files: str | None

    def open(self) -> LabelStore:
        return LabelStore.open(self.location, files=self.files)

    @property
    def root(self) -> Path:
        return Path(self.files or self.location)


@pytest.fixture(params=["sqlite", "postgresql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    if request.param == "sqlite":
        return StoreSpec("sqlite", str(tmp_path / "store"), None)
    server = request.getfixturevalue("pg_server_url")
    return StoreSpec("postgresql", fresh_pg_database(server), str(tmp_path / "files"))


@pytest.fixture
def store(spec: StoreSpec) -> Iterator[LabelStore]:
    with spec.open() as s:
        yield s


@pytest.fixture(scope="session")
def small_ds() -> MMSADataset:
    return random_dataset((12, 4, 4), seed=0, prefix="vid")


@pytest.fixture
def make_ds() -> Callable[..., MMSADataset]:
    return random_dataset
