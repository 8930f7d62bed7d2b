"""`mug`: uni-labels from MUCNs meta-learned on the stage-1 representations (stage 2).

It reads only the cached representations and the multimodal labels; generate.py hands it a
dataset stripped of per-modality ground truth, so it cannot peek even by mistake.
"""

from collections.abc import Callable

import numpy as np

from labelgen.config import LabelgenConfig
from labelgen.methods import concat_splits
from labelgen.representations import CachedReps
from labelgen.stage2 import run_stage2
from mugcore.data.schema import MODALITIES, MMSADataset


def generate(ds: MMSADataset, reps: CachedReps, config: LabelgenConfig, seed: int, *,
             on_progress: Callable[[float], None] | None = None) -> dict[str, np.ndarray]:
    result = run_stage2(reps, config.stage2, seed=seed, on_progress=on_progress)
    return {m: concat_splits(result.of(m), ds, f"mug labels for {m}") for m in MODALITIES}
