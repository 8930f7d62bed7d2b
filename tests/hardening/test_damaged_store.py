"""A damaged store through the API: a label file changed since publication and a truncated
features file are a 503 naming the file (were a bare 500 and a 200 serving the truncated file),
a missing label file is a 404 in every format (was a 500 as HDF5), and /readyz reports the
damage (it said 200)."""

import os
from collections.abc import Iterator

import pytest

from storage import LabelStore
from storage.testing import clip_table, random_dataset, seeded_labels
from tests.api.conftest import READ, Server, start_server


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict]]:
    directory = tmp_path_factory.mktemp("damaged")
    ds = random_dataset((12, 4, 4), seed=0, prefix="vid")
    with LabelStore.open(directory / "store") as store:
        store.register_dataset("mosi", ds, source_format="pickle")
        clips = clip_table(ds)
        sets = [store.publish_label_set("mosi", seeded_labels(clips, seed), method="copy",
                                        options={}, seed=seed) for seed in (1, 2)]
        files = {"changed": store.root / sets[0].file, "gone": store.root / sets[1].file,
                 "features": store.root / store.get_dataset("mosi").features_file,
                 "ids": [s.id for s in sets]}
    srv = start_server(directory, workers=0)
    yield srv, files
    srv.stop()


def test_damage_is_named_and_reported(damaged: tuple[Server, dict]) -> None:
    server, files = damaged
    changed, gone = files["ids"]
    with server.client(READ) as c:
        assert c.get("/readyz").status_code == 200
        with open(files["changed"], "r+b") as f:  # one byte changed after publication
            f.seek(-64, os.SEEK_END)
            f.write(b"\x00")
        files["gone"].unlink()
        os.truncate(files["features"], files["features"].stat().st_size // 2)
        for fmt in ("json", "hdf5", "npz"):
            r = c.get("/v1/datasets/1/labels", params={"label_set": changed, "format": fmt})
            assert r.status_code == 503, r.text
            assert f"label set {changed}" in r.json()["detail"] and "damaged" in r.text
            r = c.get("/v1/datasets/1/labels", params={"label_set": gone, "format": fmt})
            assert r.status_code == 404, r.text
            assert "gone" in r.json()["detail"]
        r = c.get("/v1/datasets/1/features")
        assert r.status_code == 503 and "features file" in r.json()["detail"], r.text
        r = c.get("/readyz")
        assert r.status_code == 503, r.text
        assert "store damaged: 3 file(s)" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
    assert "Traceback" not in server.log_text()
