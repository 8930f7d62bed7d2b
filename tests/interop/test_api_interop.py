"""The API's side of interop on a real server: uploading another generator's label set
(checked like any upload, errors naming the field), the MMSA-pickle export of a label set, and
the explorer's compare page over several label sets."""

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from mugcore.data.io import save_dataset
from mugcore.data.safe_pickle import safe_load
from mugcore.data.schema import MODALITIES, TRUTH_KEYS, MMSADataset
from tests.api.conftest import READ, WRITE, Server, start_server
from tests.interop.conftest import selfmm_file, write_csv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("interop-server"), workers=0)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dataset_id(server: Server, tiny_sims: MMSADataset,
               tmp_path_factory: pytest.TempPathFactory) -> int:
    path = tmp_path_factory.mktemp("interop-api") / "sims.pkl"
    save_dataset(tiny_sims, path)
    with server.client(WRITE) as c, open(path, "rb") as f:
        r = c.post("/v1/datasets", params={"name": "interop"}, files={"file": ("sims.pkl", f)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _ids_and_labels(ds: MMSADataset) -> tuple[list[str], dict[str, np.ndarray]]:
    ids = [str(c) for s in ds.splits.values() for c in s["id"]]
    labels = {m: np.concatenate([np.asarray(s[TRUTH_KEYS[m]], dtype=np.float64)
                                 for s in ds.splits.values()]) for m in MODALITIES}
    return ids, labels


def _upload(server: Server, dataset: int, name: str, content: bytes,
            headers: dict[str, str] = WRITE, **params: str) -> httpx.Response:
    with server.client(headers) as c:
        return c.post(f"/v1/datasets/{dataset}/label-sets", params=params,
                      files={"file": (name, content)})


def test_upload_csv_and_selfmm_then_export_as_mmsa(server: Server, dataset_id: int,
                                                   tiny_sims: MMSADataset,
                                                   tmp_path: Path) -> None:
    ids, truth = _ids_and_labels(tiny_sims)
    csv = write_csv(tmp_path / "truth.csv", ids, truth).read_bytes()
    r = _upload(server, dataset_id, "truth.csv", csv)
    assert r.status_code == 201, r.text
    csv_set = r.json()
    assert csv_set["method"] == "imported-csv" and "file" not in csv_set
    assert csv_set["provenance"]["source"]["file"] == "truth.csv"

    path, final = selfmm_file(tmp_path / "self_mm-sims-labels.pkl", tiny_sims)
    r = _upload(server, dataset_id, path.name, path.read_bytes())
    assert r.status_code == 201, r.text
    selfmm = r.json()
    assert selfmm["method"] == "imported-selfmm"
    assert selfmm["provenance"]["source"]["cpu_aliased_epochs"] is True

    with server.client(READ) as c:
        r = c.get(f"/v1/datasets/{dataset_id}/labels",
                  params={"label_set": selfmm["id"], "format": "mmsa"})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["x-label-set-id"] == str(selfmm["id"])
    exported = safe_load(io.BytesIO(r.content))
    for m in MODALITIES:
        got = exported["train"][TRUTH_KEYS[m]]
        assert np.allclose(got, final[m], atol=1e-6)
        # valid and test: Self-MM labels the train split only, so copy stands in there
        assert np.allclose(exported["test"][TRUTH_KEYS[m]],
                           np.asarray(tiny_sims.splits["test"]["regression_labels"]), atol=1e-6)
    for key in ("text", "audio", "vision", "id", "regression_labels"):
        assert np.array_equal(exported["valid"][key], tiny_sims.splits["valid"][key])
    assert not list((server.store / "exports").glob("*.pkl"))  # the temporary file is gone

    # The explorer's compare page: one table of every label set against copy and truth.
    with server.client(READ) as c:
        r = c.get("/ui/compare", params={"a": selfmm["id"], "b": "truth"})
        assert r.status_code == 200, r.text[-500:]
        table = r.text.split('id="sets"')[1].split("</table>")[0]
        names = re.findall(r"<tr[^>]*><td>([^<]+)</td><td>([^<]+)</td>", table)
        assert ("copy", "copy") in names
        assert (str(csv_set["id"]), "imported-csv") in names
        assert (str(selfmm["id"]), "imported-selfmm") in names
        r = c.get("/ui/compare", params={"a": selfmm["id"], "b": csv_set["id"],
                                         "set": [csv_set["id"], 987654]})
        assert r.status_code == 422 and "query.set" in r.text


def test_bad_uploads_are_4xx_json_naming_the_field(server: Server, dataset_id: int,
                                                   tiny_sims: MMSADataset,
                                                   tmp_path: Path) -> None:
    ids, truth = _ids_and_labels(tiny_sims)
    good = write_csv(tmp_path / "t.csv", ids, truth).read_bytes()
    lines = good.decode().splitlines()
    cases = [
        (_upload(server, dataset_id, "x.csv", good, headers={}), 401, "header.Authorization"),
        (_upload(server, 987654, "x.csv", good), 404, None),
        (_upload(server, dataset_id, "x.csv", good, epoch="2"), 422, "query.epoch"),
        (_upload(server, dataset_id, "x.csv", good, format="nope"), 422, "query.format"),
        (_upload(server, dataset_id, "x.csv", "\n".join(lines[:-1]).encode()), 422, "file"),
        (_upload(server, dataset_id, "x.csv", "\n".join(
            lines[:1] + [lines[1].rsplit(",", 1)[0] + ",7"] + lines[2:]).encode()), 422, "file"),
        (_upload(server, dataset_id, "x.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64), 422, "file"),
        (_upload(server, dataset_id, "x.pkl", b"\x80\x04junk"), 422, "file"),
        (_upload(server, dataset_id, "x.pkl", b"\x80\x04}q\x00.", format="cmc"), 422, "file"),
    ]
    for i, (r, status, field) in enumerate(cases):
        assert r.status_code == status, (i, r.text)
        assert r.json()["field"] == field, (i, r.json())
    assert "outside [-1, 1]" in cases[5][0].json()["detail"]
    assert "have no label" in cases[4][0].json()["detail"]
    assert "3 classes" in cases[8][0].json()["detail"]
    with server.client(READ) as c:
        before = c.get("/v1/datasets").json()
    assert before["items"][0]["id"] == dataset_id
