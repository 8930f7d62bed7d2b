"""The `device` job option is checked like the others: a name outside auto|cpu|cuda, or cuda on
a server without a GPU, is a 422 naming `device`, and no job is stored."""

from pathlib import Path

import pytest
import torch

from tests.api.conftest import READ, WRITE, Server

NO_GPU = not torch.cuda.is_available()


def _job_count(server: Server) -> int:
    with server.client(READ) as c:
        return len(c.get("/v1/jobs").json()["items"])


@pytest.mark.parametrize("device", ["tpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not NO_GPU, reason="this machine has a GPU"))])
def test_bad_device_is_422_naming_it(server: Server, dataset_id: int, device: str) -> None:
    before = _job_count(server)
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs", json={"method": "copy", "device": device})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body.device", r.json()
    assert _job_count(server) == before


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_query_form_refuses_cuda_before_the_upload(server: Server, tiny_mosi_pkl: Path) -> None:
    before = _job_count(server)
    with server.client(WRITE) as c, open(tiny_mosi_pkl, "rb") as f:
        r = c.post("/v1/datasets", params={"generate": "true", "device": "cuda"},
                   files={"file": ("mosi.pkl", f)})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "query.device", r.json()
    assert "no CUDA device" in r.json()["detail"]
    assert _job_count(server) == before


def test_cpu_job_is_stored_with_its_device(server: Server, dataset_id: int) -> None:
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs", json={"method": "copy", "device": "cpu"})
        assert r.status_code == 202, r.text
        assert r.json()["options"]["device"] == "cpu"
        default = c.post(f"/v1/datasets/{dataset_id}/jobs", json={"method": "copy"})
        assert default.json()["options"]["device"] == "auto"
