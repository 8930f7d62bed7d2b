"""Recovery of jobs whose worker died: a cancel requested meanwhile is kept (the job ends
cancelled, it does not run again), and a busy worker recovers a dead one's job on a timer,
not only between its own jobs. Real `mug-api` and `labelgen worker` processes, SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import LONG_JOB, WRITE, Server, start_server, wait_job

STALE_S = "3"


def _upload(c: httpx.Client, path: Path) -> int:
    with open(path, "rb") as f:
        r = c.post("/v1/datasets", files={"file": ("recovery.pkl", f)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait_stage1(c: httpx.Client, job_id: int) -> dict:
    deadline = time.monotonic() + 180
    while not ((job := c.get(f"/v1/jobs/{job_id}").json())["stage"] or "").startswith("stage1"):
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def _worker_pid(job: dict) -> int:
    return int(job["worker"].rsplit(":", 1)[1])


@pytest.fixture
def api_with_worker(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, env={"MUG_JOB_STALE_S": STALE_S})
    yield srv
    srv.stop()


def test_cancel_survives_the_death_of_its_worker(api_with_worker: Server,
                                                 tiny_mosi_pkl: Path) -> None:
    with api_with_worker.client(WRITE) as c:
        job = c.post(f"/v1/datasets/{_upload(c, tiny_mosi_pkl)}/jobs", json=LONG_JOB).json()
        running = _wait_stage1(c, job["id"])
        # The worker dies before it can see the cancel; the API starts another one.
        os.kill(_worker_pid(running), signal.SIGKILL)
        r = c.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"], r.text
        done = wait_job(c, job["id"], timeout=60)
        assert done["status"] == "cancelled", done
        assert done["attempts"] == 1, "the cancelled job ran again"
        log = [line["text"] for line in c.get(f"/v1/jobs/{job['id']}/log").json()["lines"]]
        assert any("cancelled" in text and "no heartbeat" in text for text in log), log
        time.sleep(2 * float(STALE_S))  # and it stays that way
        assert c.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


def _start_worker(store: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MUG_JOB_STALE_S": STALE_S, "MUG_POLL_S": "0.3",
           "MUG_HEARTBEAT_S": "0.3", "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "labelgen.cli", "worker", "--store",
                                 str(store)], env=env, stdout=out, stderr=subprocess.STDOUT)


def test_busy_worker_recovers_a_dead_workers_job(tmp_path: Path, tiny_mosi_pkl: Path) -> None:
    server = start_server(tmp_path / "api", workers=0)
    workers = [_start_worker(server.store, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        with server.client(WRITE) as c:
            ds = _upload(c, tiny_mosi_pkl)
            jobs = [c.post(f"/v1/datasets/{ds}/jobs", json=LONG_JOB).json()["id"]
                    for _ in range(2)]
            running = [_wait_stage1(c, j) for j in jobs]
            victim = next(w for w in workers if w.pid == _worker_pid(running[0]))
            victim.kill()
            victim.wait()
            # The survivor is busy with the other job for minutes, yet recovers this one now.
            deadline = time.monotonic() + 8 * float(STALE_S)
            while (lost := c.get(f"/v1/jobs/{jobs[0]}").json())["status"] != "queued":
                assert lost["status"] == "running", lost
                assert time.monotonic() < deadline, f"not recovered while a worker was busy: {lost}"
                time.sleep(0.3)
            assert c.get(f"/v1/jobs/{jobs[1]}").json()["status"] == "running"
            for j in jobs:
                c.post(f"/v1/jobs/{j}/cancel")
            for j in jobs:
                assert wait_job(c, j, timeout=60)["status"] == "cancelled"
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                w.wait(30)
        server.stop()
