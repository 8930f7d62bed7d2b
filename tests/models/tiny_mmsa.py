"""Tiny hand-built MMSA datasets (numpy only) for the network and batching tests."""

import numpy as np

from mugcore.data.schema import MMSADataset

TEXT_LEN, TEXT_DIM, AUDIO_LEN, AUDIO_DIM, VISION_LEN, VISION_DIM = 8, 12, 10, 5, 7, 6


def build_dataset(*, n: int = 10, aligned: bool = False, seed: int = 0) -> MMSADataset:
    """One split per name, `n` clips each; unaligned data has real lengths and garbage
    (not zeros) in the padding so that leaks from padding would show."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split in ("train", "valid", "test"):
        text_len = rng.integers(3, TEXT_LEN + 1, n)
        ids = rng.integers(1000, 2000, (n, TEXT_LEN)).astype(np.float64)
        mask = (np.arange(TEXT_LEN)[None, :] < text_len[:, None]).astype(np.float64)
        ids[:, 0] = 101  # [CLS]
        ids *= mask
        s = {
            "id": [f"vid{split}$_${i}" for i in range(n)],
            "raw_text": [f"clip {i}" for i in range(n)],
            "text": rng.normal(size=(n, TEXT_LEN, TEXT_DIM)).astype(np.float32),
            "text_bert": np.stack([ids, mask, np.zeros_like(mask)], axis=1),
            "audio": rng.normal(size=(n, AUDIO_LEN, AUDIO_DIM)).astype(np.float32),
            "vision": rng.normal(size=(n, VISION_LEN, VISION_DIM)).astype(np.float32),
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        }
        if not aligned:
            s["audio_lengths"] = rng.integers(1, AUDIO_LEN, n)  # < AUDIO_LEN: padding exists
            s["vision_lengths"] = rng.integers(1, VISION_LEN, n)
        splits[split] = s
    return MMSADataset(splits=splits, attrs={"label_bound": 3.0, "synthetic": True})


def pad_text(ds: MMSADataset, width: int) -> MMSADataset:
    """The same clips with `text_bert` and `text` zero-padded to `width` tokens, as MMSA files
    pad every clip to 50 (39 for SIMS) whatever its real length."""
    for s in ds.splits.values():
        extra = width - s["text_bert"].shape[2]
        s["text_bert"] = np.pad(s["text_bert"], ((0, 0), (0, 0), (0, extra)))
        s["text"] = np.pad(s["text"], ((0, 0), (0, extra), (0, 0)))
    return ds

