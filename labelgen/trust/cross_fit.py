"""Cross-fitting on or off, chosen per dataset: stage 1 as labelgen runs it for every method.

A stage-1 model that memorised its train clips gives them representations that echo their
own multimodal label: MUCN then sees no independent evidence on exactly the clips whose
labels it corrects, and the held-out evidence (validation clips) no longer describes them.
Cross-fitting (labelgen/stages/stage1.py) avoids that at about K-1 times the cost. So stage 1 runs
once without it, and the memorisation gap of each unimodal predictor is measured: R^2 of
P_u(h_u) against y_M on the train clips minus the same on the validation clips. If the
largest gap exceeds `selection.memorisation_gap`, stage 1 runs again cross-fitted with
`selection.cross_fit_folds` folds and its representations are used. A configured
`stage1.cross_fit_folds`, or selection switched off, is taken as it is.
"""

import dataclasses

import numpy as np

from labelgen.config import LabelgenConfig
from labelgen.stages.representations import CachedReps, SplitReps
from labelgen.stages.stage1 import OnProgress, run_stage1
from mugcore.data.schema import MODALITIES, MMSADataset
from mugcore.device import DistEnv


def memorisation_gaps(reps: CachedReps) -> dict[str, float]:
    def r2(split: SplitReps, modality: str) -> float:
        y = split.y.astype(np.float64)
        return float(1 - np.mean((split.pred[modality] - y) ** 2) / max(y.var(), 1e-12))

    return {m: r2(reps.splits["train"], m) - r2(reps.splits["valid"], m) for m in MODALITIES}


def run_stage1_chosen(ds: MMSADataset, config: LabelgenConfig, *, seed: int,
                      snapshots: bool = False,
                      on_progress: OnProgress | None = None,
                      env: DistEnv | None = None) -> CachedReps:
    """Stage 1 with or without cross-fitting (module doc); reps.info["cross_fit"] says which
    and why. `env`: the device and ranks stage 1 runs on (run_stage1's)."""
    s1, sel = config.stage1, config.selection
    if s1.cross_fit_folds or not sel.enabled or not sel.cross_fit_folds:
        reps = run_stage1(ds, s1, seed=seed, snapshots=snapshots, on_progress=on_progress,
                          env=env)
        reps.info["cross_fit"] = {"folds": s1.cross_fit_folds, "chosen": False,
                                  "train_out_of_fold": bool(s1.cross_fit_folds)}
        return reps
    k = sel.cross_fit_folds
    # progress ticks name the training (plain, or fold j of K): the caller tells them apart
    plain = run_stage1(ds, s1, seed=seed, snapshots=snapshots, on_progress=on_progress,
                       env=env)
    gaps = memorisation_gaps(plain)
    worst = max(gaps.values())
    decision = {"folds": 0, "chosen": True, "memorisation_gap": {m: round(g, 4)
                                                                 for m, g in gaps.items()},
                "threshold": sel.memorisation_gap, "train_out_of_fold": False}
    if worst <= sel.memorisation_gap:
        plain.info["cross_fit"] = decision
        return plain
    folded = run_stage1(ds, dataclasses.replace(s1, cross_fit_folds=k), seed=seed,
                        snapshots=snapshots, on_progress=on_progress, env=env)
    folded.info["cross_fit"] = {**decision, "folds": k, "train_out_of_fold": True}
    folded.info["plain_run"] = plain.info
    return folded
