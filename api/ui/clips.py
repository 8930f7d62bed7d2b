"""What the explorer's clip tables need beyond the label arrays: raw texts and per-modality
truth from the dataset's features file (read once per dataset, then cached), and filtering,
sorting and paging of clips with numpy, so that a page costs milliseconds for any size."""

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mugcore.data.h5format import read_h5_keys
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS
from storage import DatasetInfo, LabelStore

_CACHED_DATASETS = 8


@dataclass(frozen=True)
class DatasetExtras:
    """Per clip, in position order (the order of label-set arrays)."""

    raw_text: list[str]
    lowered: list[str]  # for case-insensitive search
    truth: dict[str, np.ndarray] | None


class ExtrasCache:
    """Raw texts and truth of recently viewed datasets, by content hash: the hash covers every
    array of the dataset, so an entry is right for any store holding that content and never
    goes stale."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, DatasetExtras] = OrderedDict()

    def get(self, store: LabelStore, info: DatasetInfo) -> DatasetExtras:
        key = info.content_hash
        with self._lock:
            extras = self._entries.get(key)
            if extras is not None:
                self._entries.move_to_end(key)
                return extras
        extras = _read_extras(store, info)
        with self._lock:
            self._entries[key] = extras
            while len(self._entries) > _CACHED_DATASETS:
                self._entries.popitem(last=False)
        return extras


def _read_extras(store: LabelStore, info: DatasetInfo) -> DatasetExtras:
    splits = read_h5_keys(store.features_path(info.id), ("raw_text", *TRUTH_KEYS.values()))
    texts: list[str] = []
    for split in SPLITS:
        if split in info.split_sizes:
            raw = splits.get(split, {}).get("raw_text")
            n = info.split_sizes[split]
            texts += [str(t) for t in raw] if raw is not None else [""] * n
    truth = None
    if info.has_truth:
        truth = {m: np.concatenate([np.asarray(splits[s][k], dtype=np.float64).reshape(-1)
                                    for s in SPLITS if s in info.split_sizes])
                 for m, k in TRUTH_KEYS.items()}
    return DatasetExtras(raw_text=texts, lowered=[t.casefold() for t in texts], truth=truth)


def keep_mask(split_of: np.ndarray, extras: DatasetExtras, *, split: str | None,
              text: str | None) -> np.ndarray:
    """Clips in `split` (None: all) whose raw text contains `text` (any case; None: all)."""
    keep = np.ones(len(split_of), dtype=bool) if split is None else split_of == split
    if text:
        needle = text.casefold()
        keep &= np.fromiter((needle in t for t in extras.lowered), dtype=bool,
                            count=len(extras.lowered))
    return keep


def page_positions(keep: np.ndarray, score: np.ndarray | None, *, descending: bool, page: int,
                   per_page: int) -> tuple[np.ndarray, int]:
    """Positions of page `page` (from 1) of the kept clips ordered by `score` (None: dataset
    order), and how many clips are kept. Ties stay in dataset order, so the order is the same
    as a stable sort of the bulk export."""
    candidates = np.flatnonzero(keep)
    if score is not None:
        s = score[candidates]
        candidates = candidates[np.argsort(-s if descending else s, kind="stable")]
    start = (page - 1) * per_page
    return candidates[start:start + per_page], len(candidates)


def distances(left: Mapping[str, np.ndarray], right: Mapping[str, np.ndarray]
              ) -> dict[str, np.ndarray]:
    """|left - right| per modality, and `any`: the largest of the three."""
    out = {m: np.abs(np.asarray(left[m], dtype=np.float64) - right[m]) for m in MODALITIES}
    out["any"] = np.maximum.reduce([out[m] for m in MODALITIES])
    return out


def moved(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """How far each uni-label lies from the multimodal label (see `distances`)."""
    return distances(arrays, dict.fromkeys(MODALITIES, arrays["multimodal"]))
