"""Hostile HDF5 files and pickles are refused through the API (multipart upload and the JSON
`path` form) and through `labelgen validate | import`: a 4xx / exit 2 naming the dataset path,
nothing left in the store, the outside file's bytes never served, server memory bounded."""

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import READ, WRITE, Server
from tests.security.conftest import files_holding, peak_rss
from tests.security.hostile import HDF5_VARIANTS, SECRET, TARGET, pickle_bombs

# What each HDF5 variant's refusal says, beside the dataset path.
REASON = {"external-storage": "external storage", "external-link": "external link",
          "soft-link-out": "soft link", "virtual-dataset": "virtual dataset",
          "unknown-filter": "filter", "fill-value-bomb": "declares"}
# Far below the 0.5-2 GiB each bomb makes an unguarded reader allocate, far above the few MiB
# a refused upload costs.
RSS_GROWTH_LIMIT = 256 << 20


@pytest.fixture(scope="module")
def warm(server: Server, tiny_mosi_h5: Path) -> Server:
    """A valid upload first: the server has loaded everything that one costs, so that RSS growth
    afterwards is the hostile file's alone (and the same flow does accept a valid file)."""
    _assert_accepted(_post_file(server, tiny_mosi_h5, "valid-control"))
    return server


def _post_file(server: Server, path: Path, name: str) -> httpx.Response:
    with server.client(WRITE) as c, open(path, "rb") as f:
        return c.post("/v1/datasets", params={"name": name}, files={"file": (path.name, f)})


def _assert_accepted(r: httpx.Response) -> None:
    assert r.status_code == 201, r.text


def _assert_nothing_kept(server: Server, name: str) -> None:
    with server.client(READ) as c:
        items = c.get("/v1/datasets").json()["items"]
        assert name not in [d["name"] for d in items]
        for d in items:  # nothing served holds the outside bytes
            assert SECRET not in c.get(f"/v1/datasets/{d['id']}/features").content
    assert files_holding(server.store, SECRET) == []
    assert list((server.store / "uploads").glob("*")) == []


def _assert_refused(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "file"
    for word in words:
        assert word in body["detail"], body


@pytest.mark.parametrize("variant", HDF5_VARIANTS)
def test_hostile_hdf5_upload(warm: Server, tiny_mosi_h5: Path, tmp_path: Path,
                             variant: str) -> None:
    path = HDF5_VARIANTS[variant](tiny_mosi_h5, tmp_path / "hostile.h5")
    before = peak_rss(warm.process.pid)
    r = _post_file(warm, path, f"up-{variant}")
    _assert_refused(r, TARGET, REASON[variant])
    assert str(tmp_path) not in r.text  # the client's file is named as the client sent it
    assert peak_rss(warm.process.pid) - before < RSS_GROWTH_LIMIT
    _assert_nothing_kept(warm, f"up-{variant}")


@pytest.mark.parametrize("variant", HDF5_VARIANTS)
def test_hostile_hdf5_by_path(warm: Server, tiny_mosi_h5: Path, tmp_path: Path,
                              variant: str) -> None:
    root = Path(warm.env["MUG_DATA_ROOT"])
    path = HDF5_VARIANTS[variant](tiny_mosi_h5, tmp_path / "hostile.h5")
    shutil.copy(path, root / f"{variant}.h5")
    with warm.client(WRITE) as c:
        r = c.post("/v1/datasets", json={"path": f"{variant}.h5", "name": f"path-{variant}"})
    _assert_refused(r, TARGET, REASON[variant])
    _assert_nothing_kept(warm, f"path-{variant}")


@pytest.mark.parametrize("name", ["0" * 4000, "e" * 300 + ".h5", "d/" + "e" * 300])
def test_path_names_the_file_system_refuses_are_a_4xx(warm: Server, name: str) -> None:
    with warm.client(WRITE) as c:  # schemathesis found the first as a 500
        r = c.post("/v1/datasets", json={"path": name, "name": "long-path"})
    assert r.status_code in (404, 422), r.text
    assert r.json()["field"] == "body.path"
    if "/" not in name:  # one component over the file system's limit
        assert "not a usable file name" in r.json()["detail"], r.text
    _assert_nothing_kept(warm, "long-path")


@pytest.mark.parametrize("bomb", pickle_bombs())
def test_pickle_bomb_upload(warm: Server, tmp_path: Path, bomb: str) -> None:
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle_bombs()[bomb])
    before = peak_rss(warm.process.pid)
    r = _post_file(warm, path, f"bomb-{bomb}")
    growth = peak_rss(warm.process.pid) - before
    _assert_refused(r, "bomb.pkl")
    assert growth < RSS_GROWTH_LIMIT, f"server peak RSS grew {growth >> 20} MiB"
    _assert_nothing_kept(warm, f"bomb-{bomb}")


def _labelgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labelgen.cli", *args], capture_output=True,
                          text=True, timeout=300)


def _assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("labelgen: error: "), r.stderr
    for word in words:
        assert word in last, r.stderr


@pytest.mark.parametrize("variant", HDF5_VARIANTS)
def test_hostile_hdf5_cli(tiny_mosi_h5: Path, tmp_path: Path, variant: str) -> None:
    path = HDF5_VARIANTS[variant](tiny_mosi_h5, tmp_path / "hostile.h5")
    _assert_one_line_error(_labelgen("validate", str(path)), TARGET, REASON[variant])
    out = tmp_path / "imported.h5"
    _assert_one_line_error(_labelgen("import", str(path), "--out", str(out)), TARGET)
    assert not out.exists()


@pytest.mark.parametrize("bomb", pickle_bombs())
def test_pickle_bomb_cli(tmp_path: Path, bomb: str) -> None:
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle_bombs()[bomb])
    out = tmp_path / "imported.h5"
    _assert_one_line_error(_labelgen("import", str(path), "--out", str(out)), "bomb.pkl")
    assert not out.exists()
