"""A live `mug-api` for hostile inputs: a data root for the path form, no job worker (nothing
here needs one), and the server's peak memory readable from /proc."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("security-server")
    data_root = directory / "data-root"
    data_root.mkdir()
    srv = start_server(directory, workers=0, env={"MUG_DATA_ROOT": str(data_root),
                                                  "MUG_MAX_UPLOAD_BYTES": str(64 << 20)})
    yield srv
    srv.stop()


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM) in bytes: a transient allocation that is freed
    again still shows here."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]
