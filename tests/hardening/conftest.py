"""A live `mug-api` without job workers (jobs stay queued unless a test runs a worker), with a
small synthetic dataset registered."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import WRITE, Server, start_server
from tests.trainer.conftest import store_dir  # noqa: F401 - a store with a label set, shared


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("hardening-server"), workers=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dataset_id(server: Server, tiny_mosi_pkl: Path) -> int:
    with server.client(WRITE) as c, open(tiny_mosi_pkl, "rb") as f:
        r = c.post("/v1/datasets", params={"name": "hardening"},
                   files={"file": ("sims.pkl", f)})
    assert r.status_code == 201, r.text
    return r.json()["id"]
