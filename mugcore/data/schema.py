"""The in-memory dataset: MMSA's dict of splits, plus file-level attributes.

Arrays keep the dtypes (and list-vs-array container) of the source file so that a
pickle -> HDF5 -> pickle round trip is bit for bit.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "valid", "test")
MODALITIES = ("text", "audio", "vision")

REQUIRED_KEYS = ("id", "raw_text", "text", "text_bert", "audio", "vision", "regression_labels")
LENGTH_KEYS = {"audio": "audio_lengths", "vision": "vision_lengths"}
# SIMS keys for per-modality ground truth; synthetic data stores its truth here too.
TRUTH_KEYS = {"text": "regression_labels_T", "audio": "regression_labels_A",
              "vision": "regression_labels_V"}
OPTIONAL_KEYS = ("audio_lengths", "vision_lengths", "classification_labels", "annotations",
                 *TRUTH_KEYS.values())

Split = dict[str, Any]


@dataclass
class MMSADataset:
    """`splits[name][key]` is an array (or list) with one entry per clip."""

    splits: dict[str, Split]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def label_bound(self) -> float:
        """H: multimodal labels live in [-H, H] (3 for MOSI/MOSEI, 1 for SIMS)."""
        if "label_bound" in self.attrs:
            return float(self.attrs["label_bound"])
        # A pickle carries no attributes: SIMS is the one family with per-modality keys and
        # labels within [-1, 1]; synthetic MOSI-like files carry those keys with labels up to 3.
        has_sims_keys = any(k in s for s in self.splits.values() for k in TRUTH_KEYS.values())
        within_one = all(
            np.all(np.abs(np.asarray(s["regression_labels"], dtype=np.float64)) <= 1.0)
            for s in self.splits.values() if "regression_labels" in s
        )
        return 1.0 if has_sims_keys and within_one else 3.0

    @property
    def has_truth(self) -> bool:
        return all(TRUTH_KEYS[m] in s for s in self.splits.values() for m in MODALITIES)

    def size(self, split: str) -> int:
        return len(self.splits[split]["regression_labels"])

    def release(self, key: str) -> None:
        """Free a feature no network will read: each split's array becomes a zero-width one
        with the same clips and steps, so that code slicing batches need not know. (A MOSI
        pickle's 768-d `text` is about 340 MB that a BERT encoder never reads.)"""
        for s in self.splits.values():
            if key in s:
                shape = np.shape(s[key])
                s[key] = np.zeros((*shape[:-1], 0), dtype=np.float32)
