"""Job options are validated in full when a job is submitted (the check the worker runs), with
documented upper bounds: a bad option is a 422 naming it, and no job is stored."""

import json
from pathlib import Path

import pytest

from tests.api.conftest import READ, WRITE, Server

BAD_OVERRIDES = [
    ({"stage1.max_epochs": 1_000_000_000}, "stage1.max_epochs"),
    ({"stage1.max_epochs": 2**70}, "stage1.max_epochs"),
    ({"stage2.epochs": 10**12}, "stage2.epochs"),
    ({"stage1.batch_size": 10**9}, "stage1.batch_size"),
    ({"stage2.batch_size": 10**9}, "stage2.batch_size"),
    ({"stage1.net.text_hidden": 10**9}, "stage1.net.text_hidden"),
    ({"stage1.net.text_hidden": "abc"}, "stage1.net.text_hidden"),
    ({"stage1.net.dropout": "x"}, "stage1.net.dropout"),
    ({"stage1.lr": 1e308 * 10}, "stage1.lr"),
    ({"mlc.epochs": 10**9}, "mlc.epochs"),
    ({"ulgm.eps": "small"}, "ulgm.eps"),
]


def _job_count(server: Server) -> int:
    with server.client(READ) as c:
        return len(c.get("/v1/jobs").json()["items"])


@pytest.mark.parametrize(("overrides", "option"), BAD_OVERRIDES)
def test_bad_option_is_422_naming_it(server: Server, dataset_id: int, overrides: dict,
                                     option: str) -> None:
    before = _job_count(server)
    # json.dumps writes inf as Infinity, as a careless client would send it.
    body = json.dumps({"method": "mug", "overrides": overrides})
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs", content=body,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body.overrides" and option in r.json()["detail"], r.json()
    assert _job_count(server) == before


@pytest.mark.parametrize("raw", ["Infinity", "1e999", "NaN", "-Infinity"])
def test_non_finite_numbers_are_refused(server: Server, dataset_id: int, raw: str) -> None:
    before = _job_count(server)
    body = '{"method": "mug", "overrides": {"stage2.noise_audio": ' + raw + "}}"
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs", content=body,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body.overrides", r.json()
    assert "stage2.noise_audio must be a finite number" in r.json()["detail"], r.json()
    assert _job_count(server) == before


def test_query_form_is_checked_the_same(server: Server, tiny_mosi_pkl: Path) -> None:
    before = _job_count(server)
    with server.client(WRITE) as c, open(tiny_mosi_pkl, "rb") as f:
        r = c.post("/v1/datasets", params={"name": "q", "generate": "true",
                                           "set": ["stage2.epochs=1000000000000"]},
                   files={"file": ("sims.pkl", f)})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "query.set" and "stage2.epochs" in r.json()["detail"]
    assert _job_count(server) == before


def test_options_within_bounds_are_accepted(server: Server, dataset_id: int) -> None:
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs",
                   json={"method": "mug", "overrides": {"stage1.max_epochs": 1000,
                                                        "stage1.net.text_hidden": 64}})
        assert r.status_code == 202, r.text
        assert c.post(f"/v1/jobs/{r.json()['id']}/cancel").json()["status"] == "cancelled"
