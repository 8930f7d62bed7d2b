"""A worker killed mid-job (SIGKILL): its job process exits, the job is requeued and run by
the replacement worker, and the store stays consistent."""

import os
import signal
import time
from pathlib import Path

from storage import LabelStore
from tests.api.conftest import LONG_JOB, WRITE, start_server, wait_job


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_worker_sigkill_and_recovery(tmp_path: Path, sims_pkl: Path) -> None:
    server = start_server(tmp_path, env={"MUG_JOB_STALE_S": "3"})
    try:
        with server.client(WRITE) as c:
            with open(sims_pkl, "rb") as f:
                ds = c.post("/v1/datasets", files={"file": ("kill.pkl", f)}).json()
            job = c.post(f"/v1/datasets/{ds['id']}/jobs", json=LONG_JOB).json()
            deadline = time.monotonic() + 120
            while not ((current := c.get(f"/v1/jobs/{job['id']}").json())["stage"]
                       or "").startswith("stage1"):
                assert time.monotonic() < deadline, current
                time.sleep(0.2)
            worker_pid = int(current["worker"].rsplit(":", 1)[1])
            job_processes = _children(worker_pid)
            assert job_processes, "the job should run in a child of the worker"

            os.kill(worker_pid, signal.SIGKILL)
            # The orphaned job process notices and exits on its own.
            deadline = time.monotonic() + 10
            while any(_alive(p) for p in job_processes):
                assert time.monotonic() < deadline, "job process outlived its worker"
                time.sleep(0.2)

            # The API restarts a worker, which requeues the stale job and runs it again.
            deadline = time.monotonic() + 120
            while True:
                current = c.get(f"/v1/jobs/{job['id']}").json()
                if current["attempts"] == 2 and current["status"] == "running":
                    break
                assert current["status"] in ("running", "queued"), current
                assert time.monotonic() < deadline, current
                time.sleep(0.2)
            assert not current["worker"].endswith(f":{worker_pid}")
            log = [line["text"] for line in c.get(f"/v1/jobs/{job['id']}/log").json()["lines"]]
            assert any(text.startswith("requeued: worker") for text in log), log

            c.post(f"/v1/jobs/{job['id']}/cancel")
            assert wait_job(c, job["id"], timeout=60)["status"] == "cancelled"
    finally:
        server.stop()
    # Consistent: the store opens, no label set was half-published, no stray files are left.
    with LabelStore.open(server.store) as store:
        assert store.list_label_sets() == []
        assert store.get_job(job["id"]).status == "cancelled"
        assert [p.name for p in (server.store / "labels").iterdir()] == []
    assert list((server.store / "uploads").iterdir()) == []
