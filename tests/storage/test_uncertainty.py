"""Per-clip uncertainty through the store, on both backends: published with a label set,
checked (naming the field), read back in bulk and per clip. The uncertainty values are MADE UP
by the test (storage.testing.seeded_uncertainty)."""

import numpy as np
import pytest

from mugcore.errors import UserError
from storage.testing import clip_table, seeded_labels, seeded_uncertainty
from storage.uncertainty import UNCERTAINTY_KEYS

PROVENANCE = {"uncertainty": {"method": "made-up", "level": 0.9,
                              "summary": {"audio": {"mean_width": 1.2}}}}


def _labels(ds, *, seed=1, shuffle=False):
    labels = {**seeded_labels(clip_table(ds), seed=seed)}
    labels |= seeded_uncertainty(labels, seed=seed + 100)
    if shuffle:  # publish in another clip order than the dataset's
        order = np.random.default_rng(0).permutation(len(labels["clip_id"]))
        labels = {k: np.asarray(v)[order] for k, v in labels.items()}
    return labels


def test_uncertainty_round_trip_in_bulk_and_per_clip(spec, store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    given = _labels(small_ds, shuffle=True)
    ls = store.publish_label_set("mosi", given, method="mug", options={}, seed=1,
                                 provenance=PROVENANCE)
    assert ls.provenance["uncertainty"]["level"] == 0.9
    expected = _labels(small_ds)  # the same values, in dataset order
    with spec.open() as fresh:  # from the file, not from the publisher's cache
        arrays = fresh.read_labels(ls.id)
        for key in UNCERTAINTY_KEYS:
            assert arrays[key].dtype == np.float32
            np.testing.assert_array_equal(arrays[key], expected[key])
        clip = str(expected["clip_id"][7])
        got = fresh.lookup(clip, label_set=ls.id)
        assert got.uncertainty == {m: {s: float(expected[f"{m}_{s}"][7])
                                       for s in ("std", "lower", "upper")}
                                   for m in ("text", "audio", "vision")}
        assert got.uncertainty["audio"]["lower"] <= got.audio <= got.uncertainty["audio"]["upper"]
        train = fresh.read_labels(ls.id, split="train")
        assert len(train["vision_upper"]) == 12


def test_label_sets_without_uncertainty_say_none(store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    ls = store.publish_label_set("mosi", seeded_labels(clip_table(small_ds), seed=2),
                                 method="copy", options={}, seed=0)
    assert not set(UNCERTAINTY_KEYS) & set(store.read_labels(ls.id))
    clip = str(clip_table(small_ds)["clip_id"][0])
    assert store.lookup(clip).uncertainty is None


@pytest.mark.parametrize("change, message", [
    (lambda lb: lb.pop("vision_lower"), "labels/vision_lower: missing"),
    (lambda lb: lb["text_std"].__setitem__(2, np.inf), "labels/text_std: 1 value.* not finite"),
    (lambda lb: lb["audio_std"].__setitem__(0, -0.1), "labels/audio_std: 1 value.* negative"),
    (lambda lb: lb["audio_lower"].__setitem__(4, lb["audio"][4] + 0.5),
     "labels/audio_lower: 1 value.* above the audio uni-label"),
    (lambda lb: lb["vision_upper"].__setitem__(5, lb["vision"][5] - 0.5),
     "labels/vision_upper: 1 value.* below the vision uni-label"),
    (lambda lb: lb.__setitem__("text_upper", lb["text_upper"][:-1]), "labels/text_upper: 19"),
    (lambda lb: lb.__setitem__("text_upper", lb["text_upper"].astype(str)),
     "labels/text_upper: expected numbers"),
])
def test_bad_uncertainty_names_the_field_and_leaves_nothing(store, small_ds, change, message):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    labels = {k: np.array(v) for k, v in _labels(small_ds).items()}
    change(labels)
    with pytest.raises(UserError, match=message):
        store.publish_label_set("mosi", labels, method="mug", options={}, seed=1)
    assert store.list_label_sets() == [] and list((store.root / "labels").iterdir()) == []
