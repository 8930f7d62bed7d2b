"""LabelStore on both backends: datasets, label sets, look-ups, bulk reads, deletion, schema."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mugcore.data.hashing import dataset_hash
from mugcore.errors import UserError
from storage import Conflict, LabelStore, NotFound
from storage.models import Base
from storage.publish import publish_result
from storage.testing import clip_table, random_dataset, seeded_labels


def label_files(root: Path) -> list[Path]:
    return sorted((root / "labels").iterdir())


def test_register_reuses_same_content_and_refuses_other(store, small_ds):
    first = store.register_dataset("mosi", small_ds, source_format="pickle")
    assert first.n_clips == 20 and first.split_sizes == {"train": 12, "valid": 4, "test": 4}
    assert first.content_hash == dataset_hash(small_ds) and first.has_truth
    assert first.dims["audio"] == [5, 3] and first.dims["aligned"] is False
    again = store.register_dataset("mosi", small_ds, source_format="pickle")
    assert again.id == first.id
    other = random_dataset((12, 4, 4), seed=1, prefix="vid")
    with pytest.raises(Conflict, match="already exists with other content"):
        store.register_dataset("mosi", other, source_format="pickle")
    assert [d.name for d in store.list_datasets()] == ["mosi"]
    assert len(list((store.root / "datasets").iterdir())) == 1
    with pytest.raises(UserError, match="dataset name"):
        store.register_dataset("../evil", small_ds, source_format="pickle")


def test_features_round_trip(store, small_ds):
    info = store.register_dataset("mosi", small_ds, source_format="hdf5")
    assert store.features_path("mosi").is_file()
    assert dataset_hash(store.load_features(info.id)) == info.content_hash


def test_publish_lookup_and_bulk_read(spec, store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    clips = clip_table(small_ds)
    labels = seeded_labels(clips, seed=7)
    shuffled = {k: v[::-1] for k, v in labels.items()}  # any order is accepted
    ls = store.publish_label_set("mosi", shuffled, method="copy", options={"noise": 0.3},
                                 seed=7, provenance={"versions": {"labelgen": "x"},
                                                     "timings": {"total_s": 1.5}},
                                 quality={"text": {"mae": 0.1}})
    assert ls.n_clips == 20 and ls.options == {"noise": 0.3} and ls.timings == {"total_s": 1.5}
    assert ls.versions["labelgen"] == "x" and "numpy" in ls.versions
    assert ls.quality == {"text": {"mae": 0.1}}

    bulk = store.read_labels(dataset="mosi")
    np.testing.assert_array_equal(bulk["clip_id"], clips["clip_id"])
    for key in ("multimodal", "text", "audio", "vision"):
        np.testing.assert_array_equal(bulk[key], labels[key])
    with pytest.raises(ValueError):
        bulk["text"][0] = 0.0  # the store's cached arrays are read-only

    valid = store.read_labels(ls.id, split="valid")
    assert list(valid["split"]) == ["valid"] * 4
    np.testing.assert_array_equal(valid["clip_id"], small_ds.splits["valid"]["id"])
    np.testing.assert_array_equal(valid["audio"], labels["audio"][12:16])

    clip = str(small_ds.splits["test"]["id"][2])
    got = store.lookup(clip)
    assert (got.split, got.row, got.label_set, got.dataset) == ("test", 2, ls.id, "mosi")
    assert got.text == pytest.approx(float(labels["text"][18]))
    assert got.multimodal == pytest.approx(float(small_ds.splits["test"]["regression_labels"][2]))
    assert got.truth["vision"] == pytest.approx(
        float(small_ds.splits["test"]["regression_labels_V"][2]))

    # A fresh process (new store object, cold cache) reads the same from the file.
    newer = store.publish_label_set("mosi", seeded_labels(clips, seed=8), method="mug",
                                    options={}, seed=8)
    with spec.open() as other:
        assert other.lookup(clip).label_set == newer.id
        assert other.lookup(clip, label_set=ls.id).text == pytest.approx(got.text)
        assert other.get_label_set(dataset="mosi").id == newer.id
    assert [x.id for x in store.list_label_sets("mosi")] == [ls.id, newer.id]


@pytest.mark.parametrize("change, message", [
    (lambda lb: lb.pop("audio"), "missing key"),
    (lambda lb: lb.__setitem__("text", lb["text"] * 10), "outside"),
    (lambda lb: lb["vision"].__setitem__(3, np.nan), "not finite"),
    (lambda lb: lb["clip_id"].__setitem__(0, "nope$_$0"), "not in dataset"),
    (lambda lb: lb["split"].__setitem__(0, "test"), "labels/split"),
    (lambda lb: lb["multimodal"].__setitem__(1, lb["multimodal"][1] + 1), "differ from"),
    (lambda lb: lb.__setitem__("text", lb["text"][:-1]), "entries"),
])
def test_bad_labels_leave_nothing(store, small_ds, change, message):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    labels = {k: v.copy() for k, v in seeded_labels(clip_table(small_ds), seed=1).items()}
    labels["clip_id"] = labels["clip_id"].astype(object)
    change(labels)
    with pytest.raises(UserError, match=message):
        store.publish_label_set("mosi", labels, method="copy", options={}, seed=1)
    assert store.list_label_sets() == [] and label_files(store.root) == []


def test_labels_from_other_content_are_refused(store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    with pytest.raises(Conflict, match="made from dataset content"):
        store.publish_label_set("mosi", seeded_labels(clip_table(small_ds), seed=1),
                                method="copy", options={}, seed=1,
                                provenance={"dataset_hash": "0" * 64})


def test_lookup_errors(store, small_ds):
    with pytest.raises(NotFound, match="unknown clip id"):
        store.lookup("vid0$_$0")
    store.register_dataset("a", small_ds, source_format="pickle")
    with pytest.raises(NotFound, match="no label sets yet"):
        store.lookup("vid0$_$0")
    store.register_dataset("b", random_dataset((12, 4, 4), seed=5, prefix="vid"),
                           source_format="pickle")
    with pytest.raises(UserError, match=r"several datasets \(a, b\)"):
        store.lookup("vid0$_$0")
    ls = store.publish_label_set("a", seeded_labels(clip_table(small_ds), seed=2),
                                 method="copy", options={}, seed=2)
    assert store.lookup("vid0$_$0", dataset="a").label_set == ls.id
    with pytest.raises(NotFound, match="in dataset 'a'"):
        store.lookup("missing", dataset="a")
    with pytest.raises(UserError, match="another dataset"):
        store.lookup("vid0$_$0", dataset="b", label_set=ls.id)
    with pytest.raises(NotFound, match="no label set 999"):
        store.lookup("vid0$_$0", dataset="a", label_set=999)
    with pytest.raises(UserError, match="expected an id or 'latest'"):
        store.lookup("vid0$_$0", dataset="a", label_set="newest")


def test_delete_label_set_and_dataset(store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    clips = clip_table(small_ds)
    first = store.publish_label_set("mosi", seeded_labels(clips, seed=1), method="copy",
                                    options={}, seed=1)
    second = store.publish_label_set("mosi", seeded_labels(clips, seed=2), method="mug",
                                     options={}, seed=2)
    store.delete_label_set(second.id)
    assert store.lookup(str(clips["clip_id"][0])).label_set == first.id
    assert [p.name for p in label_files(store.root)] == [Path(first.file).name]
    with pytest.raises(NotFound):
        store.read_labels(second.id)
    third = store.publish_label_set("mosi", seeded_labels(clips, seed=3), method="mug",
                                    options={}, seed=3)
    assert third.id > second.id  # a deleted id is never handed out again
    store.delete_label_set(third.id)

    job = store.create_job("mosi", {"method": "mug"})
    with pytest.raises(Conflict, match=f"in use by job\\(s\\) {job.id}"):
        store.delete_dataset("mosi")
    store.request_cancel(job.id)
    assert store.delete_dataset("mosi") == [first.id]
    assert store.list_datasets() == [] and label_files(store.root) == []
    assert list((store.root / "datasets").iterdir()) == []
    assert store.get_job(job.id).dataset_id is None  # job history survives
    with pytest.raises(NotFound):
        store.lookup(str(clips["clip_id"][0]))


def test_publish_result_registers_or_reuses(store, small_ds):
    clips = clip_table(small_ds)
    a = publish_result(store, dataset_name="mosi", ds=small_ds, source_format="pickle",
                       labels=seeded_labels(clips, seed=1), method="copy", options={}, seed=1,
                       provenance={"dataset_hash": dataset_hash(small_ds)}, quality={})
    b = publish_result(store, dataset_name="mosi", ds=small_ds, source_format="pickle",
                       labels=seeded_labels(clips, seed=2), method="copy", options={}, seed=2,
                       provenance={}, quality={})
    assert a.dataset_id == b.dataset_id and b.id > a.id


def test_schema_matches_models_and_reopen_is_idempotent(spec):
    with spec.open() as store:
        with store._engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    with spec.open() as store:  # a second open finds the schema at head
        assert store.list_datasets() == []


def _open_and_count(location: str, files: str | None) -> int:
    with LabelStore.open(location, files=files) as store:
        return len(store.list_datasets())


def test_concurrent_first_opens(spec):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.starmap(_open_and_count, [(spec.location, spec.files)] * 4)
    assert results == [0, 0, 0, 0]


def test_open_errors(tmp_path):
    with pytest.raises(UserError, match="needs a files directory"):
        LabelStore.open("postgresql+psycopg://u:secret@127.0.0.1:1/db")
    with pytest.raises(UserError, match="unsupported scheme") as err:
        LabelStore.open("mysql://u:secret@host/db")
    assert "secret" not in str(err.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        LabelStore.open(tmp_path / "file")
    with pytest.raises(UserError, match="cannot open the database") as err:
        LabelStore.open("postgresql+psycopg://u:secret@127.0.0.1:1/db", files=tmp_path / "f")
    assert "secret" not in str(err.value)
    with pytest.raises(UserError, match="only for PostgreSQL"):
        LabelStore.open(tmp_path / "s", files=tmp_path / "elsewhere")
