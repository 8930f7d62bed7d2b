"""`ground-truth`: the file's own per-modality labels (SIMS, synthetic data): the upper bound."""

import numpy as np

from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.errors import UserError


def generate(ds: MMSADataset) -> dict[str, np.ndarray]:
    missing = [f"{s}/{TRUTH_KEYS[m]}" for s in SPLITS for m in MODALITIES
               if TRUTH_KEYS[m] not in ds.splits[s]]
    if missing:
        raise UserError("method ground-truth needs per-modality labels, but the dataset lacks "
                        + ", ".join(missing))
    return {m: np.concatenate([np.asarray(ds.splits[s][TRUTH_KEYS[m]], dtype=np.float32)
                               for s in SPLITS]) for m in MODALITIES}
