"""The second probe's files (tests/security/malformed.py) through a live server and the CLI:
each a 422 naming `file` and the problem (exit 2 with one line), nothing kept in the store,
peak memory within the file's read budget, and the server answering and stoppable throughout.
Before the fix, three or four files whose reading raised inside h5py froze the server for good:
an h5py generator left suspended by the error kept h5py's global lock."""

import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mugcore.data.h5safety import read_budget
from mugcore.data.io import save_dataset
from mugcore.data.schema import MMSADataset
from mugcore.data.synth import make_synthetic
from tests.api.conftest import READ, WRITE, Server, start_server
from tests.security.conftest import peak_rss
from tests.security.malformed import HDF5_CASES, PICKLE_CASES, hdf5_case, pickle_case

HEALTHZ_LIMIT_S = 1.0


@pytest.fixture(scope="module")
def small() -> MMSADataset:
    return make_synthetic("mosi", n_train=8, n_valid=4, n_test=4, seed=0)


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory: pytest.TempPathFactory, small: MMSADataset) -> Path:
    path = tmp_path_factory.mktemp("malformed") / "small.h5"
    save_dataset(small, path)
    return path


def _post(server: Server, path: Path, name: str) -> httpx.Response:
    with server.client(WRITE) as c, open(path, "rb") as f:
        return c.post("/v1/datasets", params={"name": name}, files={"file": (path.name, f)})


def _healthz_s(server: Server) -> float:
    start = time.monotonic()
    r = httpx.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 200
    return time.monotonic() - start


def _stored_files(server: Server) -> set[Path]:
    return {p for p in server.store.rglob("*") if p.is_file() and "uploads" not in p.parts}


def _assert_refused_and_nothing_kept(server: Server, r: httpx.Response, name: str,
                                     words: tuple[str, ...], before: set[Path]) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "file", body
    for word in words:
        assert word in body["detail"], body
    assert len(r.content) < 20_000  # a 2-million-character id is not echoed back
    with server.client(READ) as c:
        assert name not in [d["name"] for d in c.get("/v1/datasets").json()["items"]]
    assert {p for p in _stored_files(server) if p.suffix != ".db-wal"} <= before
    assert list((server.store / "uploads").glob("*")) == []
    assert _healthz_s(server) < HEALTHZ_LIMIT_S


@pytest.mark.parametrize("case", HDF5_CASES)
def test_malformed_hdf5_upload_is_a_422(server: Server, small_h5: Path, tmp_path: Path,
                                        case: str) -> None:
    path = hdf5_case(case, small_h5, tmp_path / f"{case}.h5")
    before_files, before_rss = _stored_files(server), peak_rss(server.process.pid)
    r = _post(server, path, f"h5-{case}")
    _assert_refused_and_nothing_kept(server, r, f"h5-{case}", HDF5_CASES[case][1], before_files)
    growth = peak_rss(server.process.pid) - before_rss
    assert growth < read_budget(path.stat().st_size), f"peak RSS grew {growth >> 20} MiB"


@pytest.mark.parametrize("case", PICKLE_CASES)
def test_malformed_pickle_upload_is_a_422(server: Server, small: MMSADataset, tmp_path: Path,
                                          case: str) -> None:
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(pickle_case(case, small))
    before = _stored_files(server)
    r = _post(server, path, f"pkl-{case}")
    _assert_refused_and_nothing_kept(server, r, f"pkl-{case}", PICKLE_CASES[case][1], before)


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_every_pickle_protocol_the_cli_reads_the_api_reads(
        server: Server, small: MMSADataset, tmp_path: Path, protocol: int) -> None:
    path = tmp_path / f"proto{protocol}.pkl"
    path.write_bytes(pickle.dumps(small.splits, protocol=protocol))
    assert _labelgen("validate", str(path)).returncode == 0
    r = _post(server, path, f"proto-{protocol}")
    assert r.status_code == 201, r.text


def _labelgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labelgen.cli", *args], capture_output=True,
                          text=True, timeout=300)


def _assert_one_line_error(r: subprocess.CompletedProcess, words: tuple[str, ...]) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("labelgen: error: "), r.stderr[-2000:]
    assert len(last) < 2000
    for word in words:
        assert word in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("case", HDF5_CASES)
def test_malformed_hdf5_cli(small_h5: Path, tmp_path: Path, case: str) -> None:
    path = hdf5_case(case, small_h5, tmp_path / f"{case}.h5")
    _assert_one_line_error(_labelgen("validate", str(path)), HDF5_CASES[case][1])


@pytest.mark.parametrize("case", PICKLE_CASES)
def test_malformed_pickle_cli(small: MMSADataset, tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(pickle_case(case, small))
    out = tmp_path / "out.h5"
    _assert_one_line_error(_labelgen("import", str(path), "--out", str(out)),
                           PICKLE_CASES[case][1])
    assert not out.exists()


@pytest.fixture()
def own_server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "srv", workers=0)
    yield srv
    srv.stop()


def test_h5py_errors_never_freeze_the_server(own_server: Server, small_h5: Path,
                                             tmp_path: Path) -> None:
    files = [hdf5_case(case, small_h5, tmp_path / f"{case}.h5")
             for case in ("item-str-on-numbers", "invalid-utf8-id")]
    for i in range(10):
        r = _post(own_server, files[i % 2], f"freeze-{i}")
        assert r.status_code == 422, r.text
        assert _healthz_s(own_server) < HEALTHZ_LIMIT_S
    with own_server.client(READ) as c:  # the store, through h5py-free and h5py paths alike
        assert c.get("/readyz").status_code == 200
    r = _post(own_server, small_h5, "after-the-errors")
    assert r.status_code == 201, r.text
    own_server.process.send_signal(signal.SIGTERM)
    own_server.process.wait(10)  # TimeoutExpired fails the test
