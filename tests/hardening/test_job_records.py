"""Job records stay small and go away: request bodies are capped, YAML aliases in `?set=` are
refused, `GET /v1/jobs` pages with a cursor, and finished jobs can be deleted."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.api.conftest import READ, WRITE, Server


def _jobs(server: Server) -> list[dict]:
    with server.client(READ) as c:
        return c.get("/v1/jobs", params={"limit": 200}).json()["items"]


def test_large_job_body_is_413_and_not_stored(server: Server, dataset_id: int) -> None:
    before = len(_jobs(server))
    body = json.dumps({"method": "copy", "overrides": {"stage1.net.bert_checkpoint":
                                                       "x" * 10_000_000}})
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{dataset_id}/jobs", content=body,
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text[:300]
        assert r.json()["field"] == "body"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it comes
            for i in range(0, len(body), 1 << 16):
                yield body[i:i + (1 << 16)].encode()

        r = c.post(f"/v1/datasets/{dataset_id}/jobs", content=chunks(),
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text[:300]
        # Under the body cap, but the options would still bloat every job listing.
        r = c.post(f"/v1/datasets/{dataset_id}/jobs",
                   json={"method": "copy", "overrides": {"stage1.net.bert_checkpoint":
                                                         "x" * 40_000}})
        assert r.status_code == 422 and r.json()["field"] == "body.overrides", r.text[:300]
    assert len(_jobs(server)) == before


def test_yaml_aliases_in_set_are_refused(server: Server, tiny_mosi_pkl: Path) -> None:
    before = len(_jobs(server))
    nine = ",".join(["x"] * 9)
    laughs = ("{a: &a [" + nine + "], b: &b [" + ",".join(["*a"] * 9) + "], "
              "c: [" + ",".join(["*b"] * 9) + "]}")
    for item in (f"ulgm={laughs}", "stage2.hidden=[&n 8, *n]"):
        with server.client(WRITE) as c, open(tiny_mosi_pkl, "rb") as f:
            r = c.post("/v1/datasets", params={"name": "aliases", "generate": "true",
                                               "set": [item]},
                       files={"file": ("a.pkl", f)})
        assert r.status_code == 422, r.text[:300]
        assert r.json()["field"] == "query.set", r.json()
        assert "alias" in r.json()["detail"], r.json()
    assert len(_jobs(server)) == before


def test_jobs_list_pages_with_a_cursor(server: Server, dataset_id: int) -> None:
    with server.client(WRITE) as c:
        made = [c.post(f"/v1/datasets/{dataset_id}/jobs", json={"method": "copy"}).json()["id"]
                for _ in range(5)]
        seen, cursor = [], None
        while True:
            params: dict = {"limit": 2, "dataset": dataset_id}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/jobs", params=params).json()
            assert len(page["items"]) <= 2
            seen += [j["id"] for j in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
        assert set(made) <= set(seen)
        r = c.get("/v1/jobs", params={"cursor": "not-a-cursor"})
        assert r.status_code == 422 and r.json()["field"] == "query.cursor"
        for job_id in made:
            c.post(f"/v1/jobs/{job_id}/cancel")


def test_finished_jobs_can_be_deleted(server: Server, dataset_id: int) -> None:
    with server.client(WRITE) as c:
        job = c.post(f"/v1/datasets/{dataset_id}/jobs", json={"method": "copy"}).json()
        r = c.delete(f"/v1/jobs/{job['id']}")
        assert r.status_code == 409, r.text  # queued: cancel it first
        assert c.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
        assert c.delete(f"/v1/jobs/{job['id']}").status_code == 204
        assert c.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert c.get(f"/v1/jobs/{job['id']}/log").status_code == 404
        assert c.delete(f"/v1/jobs/{job['id']}").status_code == 404
        assert httpx.delete(f"{server.url}/v1/jobs/{job['id']}", headers=READ).status_code == 401
