"""The API end to end against a live server: upload, jobs, labels, idempotency, auth, cancel,
upload limits, hostile pickles, and errors that name the field."""

import io
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.api.conftest import (
    LONG_JOB,
    READ,
    TINY_JOB,
    WRITE,
    Server,
    free_port,
    wait_job,
)


def _upload(server: Server, path: Path, **params: object) -> dict:
    with server.client(WRITE) as c, open(path, "rb") as f:
        r = c.post("/v1/datasets", params=params, files={"file": (path.name, f)})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def generated(server: Server, sims_pkl: Path) -> dict:
    """POST a dataset with generate=true: the one-request flow; the job run to its end."""
    overrides = [f"{k}={v}" for k, v in TINY_JOB["overrides"].items()]
    created = _upload(server, sims_pkl, name="sims-flow", generate="true",
                      method=TINY_JOB["method"], preset=TINY_JOB["preset"], set=overrides)
    seen: list[dict] = []
    with server.client(READ) as c:
        job = wait_job(c, created["job_id"], seen=seen)
    return {"dataset": created, "job": job, "seen": seen}


def test_upload_job_poll_labels(server: Server, generated: dict, tiny_sims) -> None:
    dataset, job = generated["dataset"], generated["job"]
    assert dataset["name"] == "sims-flow" and dataset["n_clips"] == 80
    assert dataset["source_format"] == "pickle" and "features_file" not in dataset
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["label_set_id"] is not None
    progress = [j["progress"] for j in generated["seen"]]
    assert progress == sorted(progress), "progress went backwards"
    # a job's stage says where it is ("stage1 run 1/3 epoch 2/30"): its first word is the stage
    assert {(j["stage"] or "").split(" ")[0] for j in generated["seen"]} & {"stage1", "stage2",
                                                                     "publishing"}

    with server.client(READ) as c:
        clip = str(tiny_sims.splits["test"]["id"][3])
        one = c.get(f"/v1/labels/{clip}").json()
        assert one["clip_id"] == clip and one["split"] == "test"
        assert one["label_set_id"] == job["label_set_id"]
        assert one["multimodal"] == pytest.approx(tiny_sims.splits["test"]["regression_labels"][3])
        for m in ("text", "audio", "vision"):
            assert -1.0 <= one[m] <= 1.0

        # JSON pages, walked by cursor, cover every clip once and agree with the look-up.
        items, cursor = [], None
        while True:
            params = {"limit": 30, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"/v1/datasets/{dataset['id']}/labels", params=params).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [i["clip_id"] for i in items] == [
            str(x) for s in ("train", "valid", "test") for x in tiny_sims.splits[s]["id"]]
        row = next(i for i in items if i["clip_id"] == clip)
        assert row["vision"] == pytest.approx(one["vision"])

        npz = np.load(io.BytesIO(c.get(f"/v1/datasets/{dataset['id']}/labels",
                                       params={"format": "npz"}).content))
        assert list(npz["clip_id"]) == [i["clip_id"] for i in items]
        np.testing.assert_allclose(npz["audio"], [i["audio"] for i in items], rtol=1e-6)

        h5 = c.get(f"/v1/datasets/{dataset['id']}/labels", params={"format": "hdf5"})
        assert h5.headers["content-type"] == "application/x-hdf5"
        with h5py.File(io.BytesIO(h5.content), "r") as f:
            np.testing.assert_allclose(f["text"][()], npz["text"])

        ls = c.get(f"/v1/label-sets/{job['label_set_id']}").json()
        assert ls["method"] == "mug" and ls["seed"] == 0 and ls["n_clips"] == 80
        assert ls["options"]["stage1"]["max_epochs"] == 1
        assert ls["quality"]["test"]["vision"]["mae"] >= 0  # synthetic data has truth
        assert "file" not in ls

        log = c.get(f"/v1/jobs/{job['id']}/log").json()["lines"]
        assert any("claimed" in line["text"] for line in log)
        assert any("succeeded" in line["text"] for line in log)
        listed = c.get("/v1/jobs", params={"status": "succeeded"}).json()["items"]
        assert job["id"] in [j["id"] for j in listed]


def test_register_server_side_path(server: Server, mosi_h5: Path) -> None:
    root = Path(server.env["MUG_DATA_ROOT"])
    shutil.copy(mosi_h5, root / "mosi.h5")
    outside = root.parent / "outside.h5"
    shutil.copy(mosi_h5, outside)
    with server.client(WRITE) as c:
        r = c.post("/v1/datasets", json={"path": "mosi.h5", "name": "mosi-by-path"})
        assert r.status_code == 201, r.text
        assert r.json()["source_format"] == "hdf5" and r.json()["label_bound"] == 3.0
        for bad in ("../outside.h5", str(outside), "sub/../../outside.h5"):
            r = c.post("/v1/datasets", json={"path": bad})
            assert r.status_code == 403, r.text
            assert r.json()["field"] == "body.path"
        r = c.post("/v1/datasets", json={"path": "missing.h5"})
        assert r.status_code == 404 and r.json()["field"] == "body.path"
        r = c.post("/v1/datasets", json={"path": "mosi.h5", "bogus": 1})
        assert r.status_code == 422 and r.json()["field"] == "body.bogus"
        r = c.get("/v1/datasets", headers=READ).json()["items"]
        assert "mosi-by-path" in [d["name"] for d in r]


def test_idempotency_key(server: Server, generated: dict) -> None:
    dataset_id = generated["dataset"]["id"]
    body = {"method": "copy"}
    with server.client(WRITE) as c:
        first = c.post(f"/v1/datasets/{dataset_id}/jobs", json=body,
                       headers={"Idempotency-Key": "key-1"})
        assert first.status_code == 202, first.text
        job_id = first.json()["id"]
        assert first.headers["Location"] == f"/v1/jobs/{job_id}"
        assert int(first.headers["Retry-After"]) > 0
        again = c.post(f"/v1/datasets/{dataset_id}/jobs", json=body,
                       headers={"Idempotency-Key": "key-1"})
        assert again.status_code == 202 and again.json()["id"] == job_id
        other = c.post(f"/v1/datasets/{dataset_id}/jobs", json={"method": "copy", "seed": 1},
                       headers={"Idempotency-Key": "key-1"})
        assert other.status_code == 409, other.text
        fresh = c.post(f"/v1/datasets/{dataset_id}/jobs", json=body)
        assert fresh.status_code == 202 and fresh.json()["id"] != job_id
        # Not needed any further: free the worker for the next tests.
        for jid in (job_id, fresh.json()["id"]):
            assert c.post(f"/v1/jobs/{jid}/cancel").status_code == 202


def test_auth(server: Server, generated: dict) -> None:
    dataset_id = generated["dataset"]["id"]
    with server.client() as c:
        # Same answer for a resource that exists and one that does not.
        for path in (f"/v1/datasets/{dataset_id}", "/v1/datasets/987654", "/v1/jobs/987654"):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                r = c.get(path, headers=headers)
                assert r.status_code == 401, (path, headers, r.text)
                body = r.json()
                assert body["field"] == "header.Authorization"
                # The message says how to pass a token, in each interface a reader uses.
                assert body["detail"].startswith("missing or invalid bearer token: ")
                for how in ("MUG_READ_TOKEN", "Authorization: Bearer", "/ui/"):
                    assert how in body["detail"], body
        assert c.get(f"/v1/datasets/{dataset_id}", headers=READ).status_code == 200
        assert c.get(f"/v1/datasets/{dataset_id}", headers=WRITE).status_code == 200
        # The read token does not write.
        for method, path in (("POST", f"/v1/datasets/{dataset_id}/jobs"),
                             ("DELETE", f"/v1/datasets/{dataset_id}"),
                             ("POST", "/v1/jobs/1/cancel"), ("POST", "/v1/datasets")):
            r = c.request(method, path, headers=READ, json={"method": "copy"})
            assert r.status_code == 401, (method, path, r.text)
            assert "MUG_WRITE_TOKEN" in r.json()["detail"], r.text
        assert c.get("/healthz").status_code == 200


def test_refuses_public_address_without_write_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MUG_WRITE_TOKEN",)}
    r = subprocess.run([sys.executable, "-m", "api.main", "--store", str(tmp_path / "s"),
                        "--host", "0.0.0.0", "--port", str(free_port()), "--workers", "0"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "without a write token" in r.stderr


def test_cancel_running_job_within_5s(server: Server, generated: dict) -> None:
    dataset_id = generated["dataset"]["id"]
    with server.client(WRITE) as c:
        job = c.post(f"/v1/datasets/{dataset_id}/jobs", json=LONG_JOB).json()
        # Wait until training runs, so that the cancel has to stop a busy process.
        deadline = time.monotonic() + 120
        while not (c.get(f"/v1/jobs/{job['id']}").json()["stage"] or "").startswith("stage1"):
            assert time.monotonic() < deadline, "job never reached stage1"
            time.sleep(0.2)
        started = time.monotonic()
        r = c.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"]
        done = wait_job(c, job["id"], timeout=30)
        elapsed = time.monotonic() - started
        assert done["status"] == "cancelled", done
        assert elapsed < 5.0, f"cancel took {elapsed:.1f} s"
        assert done["label_set_id"] is None
        # A finished job cannot be cancelled again into another state.
        assert c.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
        assert c.post("/v1/jobs/987654/cancel").status_code == 404


def test_oversize_upload_413_and_nothing_on_disk(server: Server) -> None:
    limit = int(server.env["MUG_MAX_UPLOAD_BYTES"])
    uploads = server.store / "uploads"
    data = b"\x80" + os.urandom(limit + 1024)
    with server.client(WRITE) as c:
        r = c.post("/v1/datasets", files={"file": ("big.pkl", data)})
        assert r.status_code == 413 and r.json()["field"] == "file", r.text

        boundary = "test-boundary-123"

        def chunked():  # no Content-Length: the limit is found while streaming
            yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                   f'filename="big.pkl"\r\n\r\n').encode()
            for i in range(0, len(data), 1 << 20):
                yield data[i:i + (1 << 20)]
            yield f"\r\n--{boundary}--\r\n".encode()

        r = c.post("/v1/datasets", content=chunked(),
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413, r.text
    assert list(uploads.iterdir()) == []


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_never_runs(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"train": {"id": _Hostile(marker)}}, protocol=4)
    with server.client(WRITE) as c:
        r = c.post("/v1/datasets", files={"file": ("evil.pkl", payload)})
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["field"] == "file"
        assert str(server.store) not in r.json()["detail"]  # no server paths in errors
    time.sleep(0.5)
    assert not marker.exists()
    assert list((server.store / "uploads").iterdir()) == []


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "field"), [
    ("POST", "/v1/datasets/1/jobs", {"json": {"method": "nope"}}, 422, "body.method"),
    ("POST", "/v1/datasets/1/jobs", {"json": {"overrides": {"stage1.bogus": 1}}}, 422,
     "body.overrides"),
    ("POST", "/v1/datasets/1/jobs", {"json": {"seed": -1}}, 422, "body.seed"),
    ("POST", "/v1/datasets/1/jobs", {"content": b"{not json",
                                     "headers": {"Content-Type": "application/json"}}, 422,
     "body"),
    ("POST", "/v1/datasets/987654/jobs", {"json": {"method": "copy"}}, 404, None),
    ("GET", "/v1/jobs/abc", {}, 422, "path.job_id"),
    ("GET", "/v1/jobs/99999999999999999999999", {}, 422, "path.job_id"),
    ("GET", "/v1/jobs", {"params": {"status": "sleeping"}}, 422, "query.status"),
    ("GET", "/v1/datasets/1/labels", {"params": {"format": "csv"}}, 422, "query.format"),
    ("GET", "/v1/datasets/1/labels", {"params": {"cursor": "!!"}}, 422, "query.cursor"),
    ("GET", "/v1/labels/no-such-clip", {}, 404, None),
    ("POST", "/v1/datasets", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415,
     "header.Content-Type"),
    ("POST", "/v1/datasets", {"files": {"other": ("a.pkl", b"\x80x")}}, 422, "other"),
    ("POST", "/v1/datasets", {"files": {"file": ("a.txt", b"hello")}}, 422, "file"),
    ("POST", "/v1/datasets", {"files": {"file": ("a.pkl", b"\x80\x04garbage")}}, 422, "file"),
    ("POST", "/v1/datasets", {"params": {"generate": "true", "method": "nope"},
                              "files": {"file": ("a.pkl", b"\x80")}}, 422, "query.method"),
    ("POST", "/v1/datasets", {"params": {"generate": "true", "set": "stage9.x=1"},
                              "files": {"file": ("a.pkl", b"\x80")}}, 422, "query.set"),
])
def test_errors_name_the_field(server: Server, generated: dict, method: str, path: str,
                               kwargs: dict, status: int, field: str | None) -> None:
    with server.client(WRITE) as c:
        r = c.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["detail"] and body["field"] == field, body


def test_delete_dataset(server: Server, sims_pkl: Path) -> None:
    created = _upload(server, sims_pkl, name="to-delete")
    with server.client(WRITE) as c:
        assert c.delete(f"/v1/datasets/{created['id']}").status_code == 204
        assert c.get(f"/v1/datasets/{created['id']}").status_code == 404
        assert c.delete(f"/v1/datasets/{created['id']}").status_code == 404
