"""Messages name the interface they are read in: the API's query parameters, the CLI's flags.

A real `mug-api` (no workers) and the real `labelgen` CLI read one store in which the same
(random, SYNTHETIC) dataset is registered twice, as the README's sequence does with a pickle
and its HDF5 copy: every clip id is then in two datasets.
"""

from collections.abc import Iterator

import pytest

from labelgen.cli import main as labelgen
from mugcore.data.schema import MODALITIES
from storage import LabelStore
from storage.testing import clip_table, random_dataset
from tests.api.conftest import READ, Server, start_server


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    server = start_server(tmp_path_factory.mktemp("messages"), workers=0)
    ds = random_dataset((6, 2, 2), seed=3, prefix="msg")
    clips = clip_table(ds)
    with LabelStore.open(server.store) as store:
        for name in ("mosi", "mosi_unaligned"):
            info = store.register_dataset(name, ds, source_format="hdf5")
            store.publish_label_set(info.id, {**clips, **{m: clips["multimodal"]
                                                          for m in MODALITIES}},
                                    method="copy", options={}, seed=0)
    try:
        yield server, str(clips["clip_id"][0])
    finally:
        server.stop()


def test_api_ambiguous_clip_names_the_query_parameter(twice: tuple[Server, str]) -> None:
    server, clip = twice
    with server.client(READ) as c:
        r = c.get(f"/v1/labels/{clip}")
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert "several datasets (mosi, mosi_unaligned)" in detail
        assert "?dataset=" in detail and "--dataset" not in detail
        assert c.get(f"/v1/labels/{clip}", params={"dataset": "mosi"}).status_code == 200
        r = c.get(f"/v1/labels/{clip}", params={"dataset": "nope"})
        assert r.status_code == 404 and r.json()["detail"].startswith("unknown dataset 'nope'")


def test_api_token_error_says_how_to_pass_one(twice: tuple[Server, str]) -> None:
    server, clip = twice
    with server.client() as c:
        detail = c.get(f"/v1/labels/{clip}").json()["detail"]
    for how in ("MUG_READ_TOKEN", "'Authorization: Bearer <token>'", "explorer's form at /ui/"):
        assert how in detail, detail


def test_cli_names_its_flag_and_an_unknown_dataset(twice: tuple[Server, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    server, clip = twice
    store = str(server.store)
    assert labelgen(["labels", clip, "--store", store]) == 2
    err = capsys.readouterr().err
    assert "several datasets (mosi, mosi_unaligned); name one (--dataset)" in err
    assert labelgen(["labels", clip, "--store", store, "--dataset", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown dataset 'nope'" in err[0] and "clip" not in err[0]
    assert labelgen(["labels", "no-such-clip", "--store", store, "--dataset", "mosi"]) == 2
    assert "unknown clip id 'no-such-clip' in dataset 'mosi'" in capsys.readouterr().err
