"""A robustness-suite world whose audio is real speech: SYNTHETIC clips spoken by espeak-ng,
eGeMAPS features extracted by openSMILE.

`speechify_audio(ds, cache_dir=..., seed=...)` takes a dataset from
`mugcore.data.synth.make_synthetic` and replaces its formula-made `audio` with features of real
signal processing. Every clip's transcript (`raw_text`) is spoken by espeak-ng, with prosody set
by the clip's audio sentiment r = s_A / H (the ground truth `regression_labels_A`): positive
speech is higher, livelier (a wider pitch range), faster and louder, negative speech lower,
flatter, slower and with gaps between words. Each speaker (video) has its own voice (accent and
voice variant) and its own base pitch, range, speed and recording level, and every clip draws
random jitter on each setting, so prosody is a noisy function of r and of who speaks, not of r
alone. openSMILE computes the 25 eGeMAPSv02 low-level descriptors at 10 ms; they are averaged
over hops of `hop` frames (the smallest multiple of 10 ms, at least 50 ms, that fits the longest
clip into `frames`), zero padded after each clip's length, and z-scored per channel with the
mean and standard deviation of the train split's real frames.

The speech is synthetic, and so are the labels: this is still SYNTHETIC data, and it says so
(`synthetic: True`, `audio_source`, ids keep their `synthetic_` prefix).

Bench-only dependencies, never downloaded at run time: the Debian package `espeak-ng`
(`apt-get install espeak-ng`) and the PyPI package `opensmile` (`pip install '.[bench]'`), which
ships the SMILExtract library and the eGeMAPS configuration inside its wheel. Each clip's
10 ms descriptor matrix is cached under `cache_dir`, keyed by a hash of the text, voice, prosody
settings and both tools' versions, so a second run over the same dataset and seed only reads
files. Synthesis and extraction run in at most 2 processes.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from tqdm import tqdm

from mugcore.data.schema import SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import UserError

LLD_DIM = 25  # eGeMAPSv02 low-level descriptors
LLD_MS = 10
MIN_HOP = 5  # pool at least 5 descriptor frames (50 ms)
MAX_WORKERS = 2
MAX_TEXT_CHARS = 2000  # a clip is one utterance; longer text would take minutes to say
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
AUDIO_SOURCE = ("espeak-ng speech of raw_text, prosody set by the audio sentiment "
                "(regression_labels_A); openSMILE eGeMAPSv02 low-level descriptors")


@dataclass(frozen=True)
class Prosody:
    """How the sentiment moves each espeak-ng setting; settings are in espeak-ng's units.

    `*_gain` is the shift at r = 1, `*_speaker` the sd of a speaker's offset, `*_jitter` the
    sd of a clip's own random shift. The defaults were tuned on dataset and speech seed 100
    (see bench/bench_speech_world.py) so that a ridge regression on per-clip summaries reads
    s_A clearly better than y_M does, yet far from perfectly.
    """

    pitch_base: float = 50.0  # -p, 0..99 (about 0.15 semitones a unit)
    pitch_gain: float = 25.0
    pitch_speaker: float = 4.0
    pitch_jitter: float = 6.0
    range_base: float = 100.0  # SSML <prosody range>, percent, 0..200
    range_gain: float = 80.0
    range_speaker: float = 10.0
    range_jitter: float = 25.0
    speed_base: float = 165.0  # -s, words per minute
    speed_gain: float = 40.0
    speed_speaker: float = 8.0
    speed_jitter: float = 12.0
    amp_base: float = 100.0  # -a, 0..200
    amp_gain: float = 30.0
    amp_speaker: float = 10.0
    amp_jitter: float = 10.0
    gap_gain: float = 2.0  # -g, 10 ms pauses between words, for negative r only
    gap_jitter: float = 1.0


@dataclass(frozen=True)
class Utterance:
    """Everything that decides one clip's audio (and so its cache key)."""

    text: str
    voice: str
    pitch: int
    range_pct: int
    speed: int
    amplitude: int
    gap: int


def speechify_audio(ds: MMSADataset, *, cache_dir: Path, seed: int, frames: int = 100,
                    prosody: Prosody = Prosody(), workers: int = MAX_WORKERS,
                    progress: bool = True) -> MMSADataset:
    """`ds` with `audio` and `audio_lengths` replaced by z-scored eGeMAPS descriptors of speech.

    `frames` is the padded length L of the new audio (N, L, 25); `seed` drives the voices and
    the jitter (the same dataset and seed give the same features). Other keys are shared with
    `ds`, not copied.
    """
    _check_inputs(ds, frames, seed, workers)
    versions = tool_versions()
    bound = ds.label_bound
    plans = {split: plan_utterances(ds.splits[split]["id"], ds.splits[split]["raw_text"],
                                    ds.splits[split][TRUTH_KEYS["audio"]] / bound,
                                    seed=seed, prosody=prosody)
             for split in SPLITS}
    every = [utt for split in SPLITS for utt in plans[split]]
    with tqdm(total=len(every), desc="speech", unit="clip", disable=not progress) as bar:
        lld = extract_all(every, Path(cache_dir), versions, workers, bar.update)
    hop = max(MIN_HOP, -(-max(len(m) for m in lld) // frames))
    pooled, start = {}, 0
    for split in SPLITS:
        pooled[split] = [pool(m, hop) for m in lld[start:start + len(plans[split])]]
        start += len(plans[split])
    train = np.concatenate(pooled["train"])
    mean, std = train.mean(0), train.std(0)
    std[std == 0] = 1.0  # a constant channel stays zero rather than dividing by zero
    splits = {}
    for split in SPLITS:
        audio, lengths = pad([(m - mean) / std for m in pooled[split]], frames)
        splits[split] = {**ds.splits[split], "audio": audio, "audio_lengths": lengths}
    attrs = {**ds.attrs, "synthetic": True, "audio_source": AUDIO_SOURCE,
             "audio_hop_ms": hop * LLD_MS, "audio_seed": int(seed),
             "audio_channels": list(lld_names()), "audio_tools": versions,
             "audio_normalisation": "z-score per channel over the train split's real frames",
             "description": str(ds.attrs.get("description", "SYNTHETIC data")) +
             f" Audio: {AUDIO_SOURCE}, {hop * LLD_MS} ms frames, speech seed {seed}."}
    return MMSADataset(splits=splits, attrs=attrs)


def _check_inputs(ds: MMSADataset, frames: int, seed: int, workers: int) -> None:
    for name, value, low in (("frames", frames, 2), ("seed", seed, 0), ("workers", workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise UserError(f"{name}: must be an integer >= {low}, got {value!r}")
    bound = ds.label_bound
    for split in SPLITS:
        data = ds.splits.get(split)
        if data is None:
            raise UserError(f"{split}: the dataset has no {split} split")
        for key in ("id", "raw_text", TRUTH_KEYS["audio"]):
            if key not in data:
                raise UserError(f"{split}/{key}: missing; speechify_audio needs clip ids, "
                                "transcripts and the audio ground truth")
        truth = np.asarray(data[TRUTH_KEYS["audio"]], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(truth) | (np.abs(truth) > bound))
        if len(bad):
            raise UserError(f"{split}/{TRUTH_KEYS['audio']} index {bad[0]}: {truth[bad[0]]} is "
                            f"not a finite value within [-{bound}, {bound}]")
        for i, text in enumerate(data["raw_text"]):
            if not str(text).strip() or len(str(text)) > MAX_TEXT_CHARS:
                raise UserError(f"{split}/raw_text index {i}: a transcript needs 1 to "
                                f"{MAX_TEXT_CHARS} characters, got {len(str(text).strip())}")
    tool_versions()  # both tools present, before any long work


def _stable_int(text: str) -> int:
    # Python's hash() is salted per process; voices must not change between runs.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def plan_utterances(ids: Sequence[str], texts: Sequence[str], r: np.ndarray, *, seed: int,
                    prosody: Prosody) -> list[Utterance]:
    """The voice and prosody of every clip: speaker settings from (seed, video), clip jitter
    from (seed, clip id), so a clip's speech does not depend on which other clips exist."""
    p = prosody
    plans = []
    for clip_id, text, ri in zip(ids, texts, np.asarray(r, dtype=np.float64), strict=True):
        video = str(clip_id).split("$_$")[0]
        spk = np.random.default_rng([seed, _stable_int(video)])
        voice = f"{ACCENTS[spk.integers(len(ACCENTS))]}+{VARIANTS[spk.integers(len(VARIANTS))]}"
        offset = spk.standard_normal(4) * (p.pitch_speaker, p.range_speaker, p.speed_speaker,
                                           p.amp_speaker)
        jit = np.random.default_rng([seed, _stable_int(str(clip_id))]).standard_normal(5)
        pitch = p.pitch_base + offset[0] + p.pitch_gain * ri + p.pitch_jitter * jit[0]
        range_pct = p.range_base + offset[1] + p.range_gain * ri + p.range_jitter * jit[1]
        speed = p.speed_base + offset[2] + p.speed_gain * ri + p.speed_jitter * jit[2]
        amp = p.amp_base + offset[3] + p.amp_gain * ri + p.amp_jitter * jit[3]
        gap = p.gap_gain * max(-ri, 0.0) + p.gap_jitter * jit[4]
        plans.append(Utterance(
            text=str(text), voice=voice, pitch=int(np.clip(round(pitch), 0, 99)),
            range_pct=int(np.clip(round(range_pct), 0, 200)),
            speed=int(np.clip(round(speed), 80, 450)), amplitude=int(np.clip(round(amp), 10, 200)),
            gap=int(np.clip(round(gap), 0, 10))))
    return plans


@lru_cache(maxsize=1)
def tool_versions() -> dict[str, str]:
    """espeak-ng's and openSMILE's versions; a clear error when either is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise UserError("espeak-ng: not found on PATH; the real-speech world needs it "
                        "(Debian: apt-get install espeak-ng)")
    try:
        import opensmile
    except ImportError as exc:
        raise UserError("opensmile: the Python package is not installed; the real-speech "
                        "world needs it (pip install '.[bench]')") from exc
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    return {"espeak-ng": out.split("Data at")[0].strip(), "opensmile": opensmile.__version__,
            "feature_set": "eGeMAPSv02 LowLevelDescriptors"}


def cache_path(cache_dir: Path, utt: Utterance, versions: dict[str, str]) -> Path:
    key = hashlib.sha256(repr((astuple(utt), sorted(versions.items()))).encode()).hexdigest()
    return cache_dir / key[:2] / f"{key}.npy"


def extract_all(plans: list[Utterance], cache_dir: Path, versions: dict[str, str],
                workers: int, advance: Callable[[int], Any]) -> list[np.ndarray]:
    """10 ms descriptor matrices (n_i, 25) of every clip: from the cache, else spoken and
    extracted in at most `workers` (<= 2) processes and cached."""
    out: list[np.ndarray | None] = [None] * len(plans)
    missing = []
    for i, utt in enumerate(plans):
        path = cache_path(cache_dir, utt, versions)
        if path.exists():
            out[i] = np.load(path)
            advance(1)
        else:
            missing.append(i)
    if missing:
        jobs = [(plans[i], cache_path(cache_dir, plans[i], versions)) for i in missing]
        n = min(workers, MAX_WORKERS, len(jobs))
        # spawn, not fork: the caller may hold torch or BLAS threads, which fork can deadlock.
        with ProcessPoolExecutor(n, mp_context=get_context("spawn")) as pool:
            for i, lld in zip(missing, pool.map(_extract_and_cache, jobs, chunksize=8),
                              strict=True):
                out[i] = lld
                advance(1)
    return out  # type: ignore[return-value]


def _extract_and_cache(job: tuple[Utterance, Path]) -> np.ndarray:
    utt, path = job
    lld = extract(speak(utt))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed: a reader never sees half a matrix.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    with os.fdopen(fd, "wb") as f:
        np.save(f, lld)
    os.replace(tmp, path)
    return lld


def speak(utt: Utterance) -> tuple[np.ndarray, int]:
    """espeak-ng's speech of `utt` as float32 samples in [-1, 1] and the sample rate."""
    ssml = (f'<speak><prosody range="{utt.range_pct}%">{escape(utt.text)}</prosody></speak>')
    cmd = ["espeak-ng", "--stdin", "-m", "-v", utt.voice, "-p", str(utt.pitch),
           "-s", str(utt.speed), "-a", str(utt.amplitude), "-g", str(utt.gap), "--stdout"]
    wav = subprocess.run(cmd, input=ssml.encode(), capture_output=True, check=True).stdout
    return _parse_wav(wav)


def _parse_wav(wav: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng writes to a pipe, so it cannot go back to fill in the RIFF and data sizes:
    # read the format chunk, then take every byte after the data header as 16-bit PCM.
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng did not write a WAV stream")
    pos, rate = 12, 0
    while pos + 8 <= len(wav):
        tag, size = wav[pos:pos + 4], int.from_bytes(wav[pos + 4:pos + 8], "little")
        if tag == b"fmt ":
            channels = int.from_bytes(wav[pos + 10:pos + 12], "little")
            rate = int.from_bytes(wav[pos + 12:pos + 16], "little")
            bits = int.from_bytes(wav[pos + 22:pos + 24], "little")
            if (channels, bits) != (1, 16):
                raise RuntimeError(f"espeak-ng wrote {channels} channels of {bits} bits")
        elif tag == b"data":
            body = wav[pos + 8:]
            pcm = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
            return pcm.astype(np.float32) / np.float32(32768.0), rate
        pos += 8 + size
    raise RuntimeError("espeak-ng wrote a WAV stream without audio")


@lru_cache(maxsize=1)
def _smile() -> Any:
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.LowLevelDescriptors)


@lru_cache(maxsize=1)
def lld_names() -> tuple[str, ...]:
    return tuple(_smile().feature_names)


def extract(signal: tuple[np.ndarray, int]) -> np.ndarray:
    """eGeMAPSv02 low-level descriptors (frames, 25) float32, one frame per 10 ms."""
    samples, rate = signal
    lld = _smile().process_signal(samples, rate).to_numpy(dtype=np.float32)
    if lld.ndim != 2 or lld.shape[1] != LLD_DIM or len(lld) == 0 or not np.isfinite(lld).all():
        raise RuntimeError(f"openSMILE returned descriptors of shape {lld.shape} with "
                           "non-finite values or no frames")
    return lld


def pool(lld: np.ndarray, hop: int) -> np.ndarray:
    """Means over consecutive blocks of `hop` frames (the last block may be shorter)."""
    n = len(lld)
    starts = np.arange(0, n, hop)
    return np.add.reduceat(lld, starts, axis=0) / np.diff(np.append(starts, n))[:, None]


def pad(clips: list[np.ndarray], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, frames, D) float32 with zeros after each clip, and the lengths (N,) int64."""
    out = np.zeros((len(clips), frames, clips[0].shape[1]), np.float32)
    lengths = np.array([len(c) for c in clips], np.int64)
    for i, c in enumerate(clips):
        out[i, : len(c)] = c
    return out, lengths
