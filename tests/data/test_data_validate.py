"""Each class of dataset problem gives one precise message naming split, key and index."""

from collections.abc import Callable

import numpy as np
import pytest
from mmsa_builders import make_mmsa

from mugcore.data.schema import MMSADataset
from mugcore.data.validate import check_dataset, validate_dataset
from mugcore.errors import DatasetError


def drop_split(ds: MMSADataset) -> None:
    del ds.splits["valid"]


def drop_key(ds: MMSADataset) -> None:
    del ds.splits["test"]["audio"]


def short_key(ds: MMSADataset) -> None:
    ds.splits["train"]["vision"] = ds.splits["train"]["vision"][:-1]


def other_dim(ds: MMSADataset) -> None:
    ds.splits["test"]["audio"] = np.zeros((3, 12, 6), dtype=np.float32)


def bad_text_bert(ds: MMSADataset) -> None:
    ds.splits["valid"]["text_bert"] = ds.splits["valid"]["text_bert"][:, :2]


def zero_length(ds: MMSADataset) -> None:
    ds.splits["train"]["audio_lengths"][4] = 0


def long_length(ds: MMSADataset) -> None:
    ds.splits["valid"]["vision_lengths"][2] = 11


def nan_feature(ds: MMSADataset) -> None:
    ds.splits["test"]["vision"][2, 3, 1] = np.nan


def inf_label(ds: MMSADataset) -> None:
    ds.splits["train"]["regression_labels"][5] = np.inf


def big_label(ds: MMSADataset) -> None:
    ds.splits["valid"]["regression_labels"][1] = 3.2


def duplicate_within(ds: MMSADataset) -> None:
    ds.splits["train"]["id"][3] = ds.splits["train"]["id"][0]


def duplicate_across(ds: MMSADataset) -> None:
    ds.splits["test"]["id"][1] = ds.splits["train"]["id"][2]


def empty_split(ds: MMSADataset) -> None:
    ds.splits["test"] = {k: v[:0] for k, v in ds.splits["test"].items()}


def lengths_missing_in_one_split(ds: MMSADataset) -> None:
    del ds.splits["test"]["vision_lengths"]


CASES: list[tuple[Callable[[MMSADataset], None], str]] = [
    (drop_split, "missing split 'valid'"),
    (drop_key, "test: missing required key 'audio'"),
    (short_key, "train/vision: 5 clips, but train/regression_labels has 6"),
    (other_dim, "test/audio: feature dim 6, but train/audio has 5"),
    (bad_text_bert, "valid/text_bert: shape (3, 2, 8), expected (N, 3, Lt)"),
    (zero_length, "train/audio_lengths index 4: length 0 outside [1, 12]"),
    (long_length, "valid/vision_lengths index 2: length 11 outside [1, 10]"),
    (nan_feature, "test/vision index 2: NaN or inf in features"),
    (inf_label, "train/regression_labels index 5: label is inf"),
    (big_label, "valid/regression_labels index 1: label 3.2 outside [-3, 3]"),
    (duplicate_within, "train/id index 3: duplicate clip id 'vid0$_$0' (also train index 0)"),
    (duplicate_across, "test/id index 1: duplicate clip id 'vid1$_$0' (also train index 2)"),
    (empty_split, "test: empty split (0 clips)"),
    (lengths_missing_in_one_split, "test: missing key 'vision_lengths', which train, valid has"),
]


@pytest.mark.parametrize(("damage", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_problem_is_named(damage: Callable[[MMSADataset], None], message: str) -> None:
    ds = make_mmsa()
    assert validate_dataset(ds) == []
    damage(ds)
    problems = validate_dataset(ds)
    assert message in problems[0] and len(problems) == 1, problems


def test_aligned_and_sims_style_datasets_are_valid() -> None:
    assert validate_dataset(make_mmsa(aligned=True)) == []
    sims = make_mmsa(truth=True)
    assert sims.label_bound == 1.0 and validate_dataset(sims) == []
    sims.splits["test"]["regression_labels_V"][0] = -1.5
    assert validate_dataset(sims) == [
        "test/regression_labels_V index 0: label -1.5 outside [-1, 1]"]


def test_padded_length_may_differ_between_splits() -> None:
    ds = make_mmsa()
    test = ds.splits["test"]
    test["audio"] = np.concatenate([test["audio"], np.zeros((3, 4, 5), np.float32)], axis=1)
    assert validate_dataset(ds) == []


def test_many_bad_values_give_one_message_with_a_count() -> None:
    ds = make_mmsa(sizes=(400, 3, 3))
    ds.splits["train"]["text"][10:] = np.nan
    ds.splits["train"]["regression_labels"][7:] = -4
    problems = validate_dataset(ds)
    assert problems == [
        "train/text index 10: NaN or inf in features (390 clips in all, at indexes "
        "10, 11, 12, 13, 14, ...)",
        "train/regression_labels index 7: label -4 outside [-3, 3] (393 clips in all, at "
        "indexes 7, 8, 9, 10, 11, ...)"]


def test_problems_are_all_reported_together() -> None:
    ds = make_mmsa()
    nan_feature(ds)
    big_label(ds)
    duplicate_across(ds)
    with pytest.raises(DatasetError) as info:
        check_dataset(ds, "somewhere.pkl")
    assert str(info.value).startswith("somewhere.pkl: 3 problems, first: valid/regression_labels")
    assert len(info.value.problems) == 3


def test_wrong_types_are_problems_not_crashes() -> None:
    ds = make_mmsa()
    ds.splits["train"]["audio"] = ds.splits["train"]["audio"].astype(object)
    ds.splits["valid"]["audio_lengths"] = [1.5, 2, 3]
    ds.splits["valid"]["id"] = np.array([1, 2, 3], dtype=object)
    ds.splits["test"]["regression_labels"] = np.array(["a", "b", "c"])
    problems = validate_dataset(ds)
    assert problems == [
        "train/audio: expected a numeric array, got object",
        "valid/audio_lengths index 0: length 1.5 is not an integer",
        "valid/id index 0: clip id 1 is not a string (3 clips in all, at indexes 0, 1, 2)",
        "test/regression_labels: expected numeric labels, got dtype <U1",
    ]
