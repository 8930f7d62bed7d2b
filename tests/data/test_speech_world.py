"""The real-speech audio world (bench/speech_world.py): prosody plans, WAV parsing, pooling and
input checks everywhere; real espeak-ng speech and openSMILE features where both are installed
(bench-only dependencies: `apt-get install espeak-ng`, `pip install '.[bench]'`)."""

import io
import shutil
import sys
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # bench/ holds scripts, not an installed package

from bench.speech_world import (  # noqa: E402
    LLD_DIM,
    Prosody,
    Utterance,
    _parse_wav,
    cache_path,
    extract,
    lld_names,
    plan_utterances,
    pool,
    speak,
    speechify_audio,
    tool_versions,
)
from mugcore.data.io import load_dataset, save_dataset  # noqa: E402
from mugcore.data.schema import SPLITS, MMSADataset  # noqa: E402
from mugcore.data.synth import make_synthetic  # noqa: E402
from mugcore.data.validate import validate_dataset  # noqa: E402
from mugcore.errors import UserError  # noqa: E402


def _tools_missing() -> str | None:
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (Debian: apt-get install espeak-ng)"
    try:
        import opensmile  # noqa: F401
    except ImportError:
        return "opensmile is not installed (pip install '.[bench]')"
    return None


needs_tools = pytest.mark.skipif(_tools_missing() is not None,
                                 reason=f"real-speech world: {_tools_missing()}")


@pytest.fixture(scope="module")
def tiny() -> MMSADataset:
    return make_synthetic("mosi", n_train=10, n_valid=4, n_test=4, seed=5)


def test_plan_follows_sentiment_per_speaker_voice_and_jitter() -> None:
    ids = [f"synthetic_mosi_{v:05d}$_${c}" for v in range(40) for c in range(1, 6)]
    r = np.random.default_rng(0).uniform(-1, 1, len(ids))
    plans = plan_utterances(ids, ["a clip"] * len(ids), r, seed=3, prosody=Prosody())
    assert plans == plan_utterances(ids, ["a clip"] * len(ids), r, seed=3, prosody=Prosody())
    assert plans != plan_utterances(ids, ["a clip"] * len(ids), r, seed=4, prosody=Prosody())
    # One voice per video, several voices over the speakers.
    voices = {i.split("$_$")[0]: set() for i in ids}
    for clip_id, p in zip(ids, plans, strict=True):
        voices[clip_id.split("$_$")[0]].add(p.voice)
    assert all(len(v) == 1 for v in voices.values())
    assert len(set().union(*voices.values())) > 10
    # Positive speech is higher, livelier, faster and louder; negative has word gaps.
    for field in ("pitch", "range_pct", "speed", "amplitude"):
        values = np.array([getattr(p, field) for p in plans])
        assert np.corrcoef(values, r)[0, 1] > 0.5, field
    gaps = np.array([p.gap for p in plans])
    assert gaps[r < -0.5].mean() > gaps[r > 0.5].mean()
    # Jitter: the same r within one speaker does not give the same settings twice.
    same = plan_utterances(ids[:5], ["a clip"] * 5, np.zeros(5), seed=3, prosody=Prosody())
    assert len({p.pitch for p in same}) > 1
    # A plan does not depend on the other clips in the list.
    assert plan_utterances(ids[7:9], ["a clip"] * 2, r[7:9], seed=3,
                           prosody=Prosody()) == plans[7:9]


def test_wav_from_a_pipe_parses_despite_placeholder_sizes() -> None:
    samples = (np.sin(np.arange(2205) / 7.0) * 12000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(samples.tobytes())
    wav = bytearray(buf.getvalue())
    # What espeak-ng --stdout writes: sizes it could not go back to fill in.
    wav[4:8] = wav[40:44] = (0x7FFFF000).to_bytes(4, "little")
    x, rate = _parse_wav(bytes(wav))
    assert rate == 22050 and x.dtype == np.float32
    assert np.array_equal(x, samples.astype(np.float32) / 32768)
    with pytest.raises(RuntimeError, match="WAV"):
        _parse_wav(b"not a wav file at all")


def test_pool_averages_blocks_and_keeps_the_tail() -> None:
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    out = pool(x, 3)
    assert out.shape == (3, 2)
    assert np.allclose(out[:, 0], [2.0, 8.0, 12.0])


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["valid"].pop("raw_text"), "valid/raw_text"),
    (lambda d: d["test"].pop("regression_labels_A"), "test/regression_labels_A"),
    (lambda d: d["train"]["regression_labels_A"].__setitem__(2, 7.0),
     "train/regression_labels_A index 2"),
    (lambda d: d["train"]["raw_text"].__setitem__(1, "  "), "train/raw_text index 1"),
    (lambda d: d["valid"].__setitem__("raw_text", np.array(["word " * 500] * 4)),
     "valid/raw_text index 0: a transcript needs 1 to 2000"),
])
def test_bad_dataset_names_the_field(tiny: MMSADataset, tmp_path: Path, change, field) -> None:
    splits = {s: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
              for s, d in tiny.splits.items()}
    change(splits)
    with pytest.raises(UserError, match=field):
        speechify_audio(MMSADataset(splits, dict(tiny.attrs)), cache_dir=tmp_path, seed=0)
    assert not any(tmp_path.iterdir()), "nothing is written before the checks pass"


@pytest.mark.parametrize(("kwargs", "field"), [({"frames": 1}, "frames"), ({"seed": -1}, "seed"),
                                               ({"workers": 0}, "workers")])
def test_bad_arguments_name_the_field(tiny: MMSADataset, tmp_path: Path, kwargs, field) -> None:
    args = {"cache_dir": tmp_path, "seed": 0, **kwargs}
    with pytest.raises(UserError, match=f"^{field}:"):
        speechify_audio(tiny, **args)


def test_missing_espeak_is_a_clear_error(tiny: MMSADataset, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    tool_versions.cache_clear()
    try:
        with pytest.raises(UserError, match="espeak-ng: not found.*apt-get install espeak-ng"):
            speechify_audio(tiny, cache_dir=tmp_path / "cache", seed=0)
    finally:
        tool_versions.cache_clear()
    assert not (tmp_path / "cache").exists()


def test_missing_opensmile_is_a_clear_error(tiny: MMSADataset, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # An executable named espeak-ng so that the check gets as far as the import; it is
    # never run, since the missing package stops the check first.
    exe = tmp_path / "espeak-ng"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "opensmile", None)
    tool_versions.cache_clear()
    try:
        with pytest.raises(UserError, match=r"opensmile: .*pip install '\.\[bench\]'"):
            speechify_audio(tiny, cache_dir=tmp_path / "cache", seed=0)
    finally:
        tool_versions.cache_clear()
    assert not (tmp_path / "cache").exists()


@needs_tools
def test_prosody_reaches_the_features() -> None:
    """Real speech: the positive setting has a higher pitch, is louder and is shorter."""
    text = "i thought the story was told with a lot of care and the music was lovely"
    plain = Prosody(pitch_jitter=0, range_jitter=0, speed_jitter=0, amp_jitter=0, gap_jitter=0)
    low, high = plan_utterances(["synthetic_x_00001$_$1", "synthetic_x_00001$_$2"],
                                [text, text], np.array([-1.0, 1.0]), seed=0, prosody=plain)
    f0, loud = lld_names().index("F0semitoneFrom27.5Hz_sma3nz"), lld_names().index("Loudness_sma3")
    feats = {}
    for name, utt in (("low", low), ("high", high)):
        samples, rate = speak(utt)
        assert rate > 8000 and len(samples) > rate  # over a second of speech
        feats[name] = extract((samples, rate))
        assert feats[name].shape[1] == LLD_DIM
    voiced = {k: v[v[:, f0] > 0, f0] for k, v in feats.items()}
    assert voiced["high"].mean() > voiced["low"].mean() + 1.0  # semitones
    assert feats["high"][:, loud].mean() > feats["low"][:, loud].mean()
    assert len(feats["high"]) < len(feats["low"])


@needs_tools
def test_speechify_real_clips_cached_and_normalised(tiny: MMSADataset, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ds = speechify_audio(tiny, cache_dir=cache, seed=2, frames=60, progress=False)
    assert validate_dataset(ds) == []
    assert ds.attrs["synthetic"] is True and "espeak-ng" in ds.attrs["audio_source"]
    assert ds.attrs["audio_hop_ms"] >= 50 and len(ds.attrs["audio_channels"]) == LLD_DIM
    real = []
    for split in SPLITS:
        d, before = ds.splits[split], tiny.splits[split]
        n = tiny.size(split)
        assert d["audio"].shape == (n, 60, LLD_DIM) and d["audio"].dtype == np.float32
        lengths = d["audio_lengths"]
        assert lengths.dtype == np.int64 and lengths.min() >= 5 and lengths.max() <= 60
        steps = np.arange(60)[None, :]
        assert not d["audio"][steps >= lengths[:, None]].any(), "zeros after each clip"
        assert all(str(i).startswith("synthetic_") for i in d["id"])
        for key in ("id", "raw_text", "vision", "regression_labels", "regression_labels_A"):
            assert d[key] is before[key]
        if split == "train":
            real = np.concatenate([a[:k] for a, k in zip(d["audio"], lengths, strict=True)])
    assert np.allclose(real.mean(0), 0, atol=1e-4) and np.allclose(real.std(0), 1, atol=1e-3)
    # Longer transcripts take longer to say (same speaker settings aside).
    words = np.array([len(str(t).split()) for s in SPLITS for t in tiny.splits[s]["raw_text"]])
    frames = np.concatenate([ds.splits[s]["audio_lengths"] for s in SPLITS])
    assert np.corrcoef(words, frames)[0, 1] > 0.5

    files = sorted(cache.glob("*/*.npy"))
    assert len(files) == sum(tiny.size(s) for s in SPLITS)
    # A second run reads the cache: a planted matrix shows up in its output.
    d = tiny.splits["test"]
    r = d["regression_labels_A"][:1] / tiny.label_bound
    first = plan_utterances(d["id"][:1], d["raw_text"][:1], r, seed=2, prosody=Prosody())[0]
    planted = cache_path(cache, first, tool_versions())
    lld = np.load(planted)
    np.save(planted, np.full_like(lld, 1e6))
    again = speechify_audio(tiny, cache_dir=cache, seed=2, frames=60, progress=False)
    assert np.abs(again.splits["test"]["audio"][0]).max() > 10
    assert np.array_equal(again.splits["valid"]["audio"], ds.splits["valid"]["audio"])

    path = tmp_path / "speech.h5"
    save_dataset(ds, path)
    back = load_dataset(path)
    assert np.array_equal(back.splits["train"]["audio"], ds.splits["train"]["audio"])
    assert back.attrs["audio_tools"] == ds.attrs["audio_tools"]


def test_changed_prosody_or_tool_is_a_new_cache_entry() -> None:
    utt = Utterance(text="a clip", voice="en-us+m3", pitch=50, range_pct=100, speed=170,
                    amplitude=100, gap=0)
    versions = {"espeak-ng": "1.51", "opensmile": "2.6.0"}
    assert cache_path(Path("c"), utt, versions) == cache_path(Path("c"), replace(utt), versions)
    assert cache_path(Path("c"), utt, versions) != cache_path(Path("c"), replace(utt, pitch=51),
                                                              versions)
    assert cache_path(Path("c"), utt, versions) != cache_path(
        Path("c"), utt, {**versions, "opensmile": "0.0"})
