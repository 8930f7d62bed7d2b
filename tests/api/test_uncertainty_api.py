"""Per-clip uncertainty through the live API: GET /v1/labels/{clip_id}, JSON pages, NPZ and
HDF5 exports, and the provenance keys of GET /v1/label-sets/{id}. The label set is published
straight into the server's store with MADE-UP uncertainty (storage.testing.seeded_uncertainty);
what is under test is that every path serves what was stored."""

import io

import h5py
import numpy as np
import pytest

from storage import LabelStore
from storage.testing import clip_table, random_dataset, seeded_labels, seeded_uncertainty
from storage.uncertainty import UNCERTAINTY_KEYS
from tests.api.conftest import READ, Server

PROVENANCE = {
    "uncertainty": {"method": "made-up", "level": 0.9,
                    "summary": {m: {"mean_std": 0.4} for m in ("text", "audio", "vision")}},
    "gate": {"audio": {"decision": "shrink", "shrink": 0.5, "evidence": {"gain": 0.02},
                       "reason": "thin evidence"}},
    "selection": {"criterion": "made-up", "audio": {"chosen": {"noise": 0.3},
                                                    "candidates": [{"noise": 0.3, "score": 1.0}]}},
}


@pytest.fixture(scope="module")
def published(server: Server) -> dict:
    ds = random_dataset((30, 8, 8), seed=4, prefix="unc")
    labels = seeded_labels(clip_table(ds), seed=4)
    labels |= seeded_uncertainty(labels, seed=5)
    with LabelStore.open(server.store) as store:
        info = store.register_dataset("with-uncertainty", ds, source_format="hdf5")
        with_u = store.publish_label_set(info.id, labels, method="mug", options={}, seed=1,
                                         provenance=PROVENANCE)
        without = store.publish_label_set(
            info.id, seeded_labels(clip_table(ds), seed=6), method="copy", options={}, seed=0,
            provenance={"uncertainty": {"method": "none", "reason": "copy carries none"}})
    return {"dataset": info.id, "with": with_u.id, "without": without.id, "labels": labels}


def test_clip_lookup_returns_the_uncertainty(server: Server, published: dict) -> None:
    labels, i = published["labels"], 9
    clip = str(labels["clip_id"][i])
    with server.client(READ) as c:
        one = c.get(f"/v1/labels/{clip}", params={"label_set": published["with"]}).json()
        assert one["uncertainty"] == {
            m: {s: pytest.approx(float(labels[f"{m}_{s}"][i])) for s in ("std", "lower", "upper")}
            for m in ("text", "audio", "vision")}
        plain = c.get(f"/v1/labels/{clip}", params={"label_set": published["without"]}).json()
        assert plain["uncertainty"] is None


def test_exports_carry_the_uncertainty(server: Server, published: dict) -> None:
    labels, url = published["labels"], f"/v1/datasets/{published['dataset']}/labels"
    with server.client(READ) as c:
        params = {"label_set": published["with"]}
        items, cursor = [], None
        while True:
            page = c.get(url, params={**params, "limit": 17,
                                      **({"cursor": cursor} if cursor else {})}).json()
            items += page["items"]
            if (cursor := page["next_cursor"]) is None:
                break
        assert len(items) == 46
        for key in UNCERTAINTY_KEYS:
            m, s = key.split("_")
            np.testing.assert_allclose([row["uncertainty"][m][s] for row in items], labels[key],
                                       rtol=1e-6)
        npz = np.load(io.BytesIO(c.get(url, params={**params, "format": "npz"}).content))
        h5 = c.get(url, params={**params, "format": "hdf5"})
        with h5py.File(io.BytesIO(h5.content), "r") as f:
            for key in UNCERTAINTY_KEYS:
                np.testing.assert_array_equal(npz[key], labels[key])
                np.testing.assert_array_equal(f[key][()], labels[key])
        plain = c.get(url, params={"label_set": published["without"]}).json()["items"]
        assert all(row["uncertainty"] is None for row in plain)
        npz_plain = np.load(io.BytesIO(c.get(url, params={"label_set": published["without"],
                                                          "format": "npz"}).content))
        assert not set(UNCERTAINTY_KEYS) & set(npz_plain.files)


def test_label_set_shows_selection_gate_and_uncertainty(server: Server, published: dict) -> None:
    with server.client(READ) as c:
        shown = c.get(f"/v1/label-sets/{published['with']}").json()["provenance"]
        none = c.get(f"/v1/label-sets/{published['without']}").json()["provenance"]
    assert shown["uncertainty"] == PROVENANCE["uncertainty"]
    assert shown["gate"] == PROVENANCE["gate"] and shown["selection"] == PROVENANCE["selection"]
    assert none["uncertainty"] == {"method": "none", "reason": "copy carries none"}
