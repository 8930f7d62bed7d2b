"""A real `mug-api` server (uvicorn in a subprocess, embedded workers) on a loopback port."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mugcore.data.io import save_dataset
from mugcore.data.schema import MMSADataset

WRITE_TOKEN = "test-write-token"
READ_TOKEN = "test-read-token"
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
# A label-generation job that finishes in seconds: LSTM text encoder, one epoch, small nets.
TINY_JOB = {"method": "mug", "preset": "fast",
            "overrides": {"stage1.max_epochs": 1, "stage2.epochs": 2}}
# One that runs for minutes unless stopped (for cancel and kill tests; 1000: the epoch limit).
LONG_JOB = {"method": "mug", "preset": "fast",
            "overrides": {"stage1.max_epochs": 1000, "stage1.patience": 1000}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    store: Path
    process: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers or {}, timeout=60)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(directory: Path, *, workers: int = 1, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> Server:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    store = directory / "store"
    log = directory / "server.log"
    full_env = {**os.environ, "MUG_WRITE_TOKEN": WRITE_TOKEN, "MUG_READ_TOKEN": READ_TOKEN,
                "MUG_HEARTBEAT_S": "0.3", "MUG_POLL_S": "0.3", "HF_HUB_OFFLINE": "1",
                **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.main", "--store", str(store), "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), *args],
            env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", store, process, log, full_env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"server did not become ready:\n{server.log_text()}")


def wait_job(client: httpx.Client, job_id: int, *, until: tuple[str, ...] = (
        "succeeded", "failed", "cancelled"), timeout: float = 240.0,
        seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if seen is not None:
            seen.append(job)
        if job["status"] in until:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not reach {until} in {timeout} s: {job}")


@pytest.fixture(scope="session")
def sims_pkl(tmp_path_factory: pytest.TempPathFactory, tiny_sims: MMSADataset) -> Path:
    path = tmp_path_factory.mktemp("api-data") / "tiny_sims.pkl"
    save_dataset(tiny_sims, path)
    return path


@pytest.fixture(scope="session")
def mosi_h5(tiny_mosi_h5: Path) -> Path:
    return tiny_mosi_h5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("api-server")
    data_root = directory / "data-root"
    data_root.mkdir()
    srv = start_server(directory, env={"MUG_DATA_ROOT": str(data_root),
                                       "MUG_MAX_UPLOAD_BYTES": str(40 * 1024 * 1024)})
    yield srv
    srv.stop()
