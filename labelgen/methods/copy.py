"""`copy`: the multimodal label as every uni-label, the naive baseline."""

import numpy as np

from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset


def generate(ds: MMSADataset) -> dict[str, np.ndarray]:
    y = np.concatenate([np.asarray(ds.splits[s]["regression_labels"], dtype=np.float32)
                        for s in SPLITS])
    return {m: y.copy() for m in MODALITIES}
