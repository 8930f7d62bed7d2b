"""The label generators behind `--method`: name -> how to turn a dataset into uni-labels.

Every method returns a `MethodOutput`: {modality: float32 array over all clips}, clips in the
order of `all_clips(ds)` (train, then valid, then test), optional per-clip uncertainty arrays
(storage.uncertainty's nine keys) and provenance sections (`selection`, `gate`,
`uncertainty`). A method without uncertainty says why in provenance["uncertainty"]. A method
says whether it needs stage 1 (`needs_reps`: it receives the `CachedReps`, else None) and
whether it needs the per-epoch train snapshots (`needs_snapshots`, for ULGM), and whether on
small train splits its labels are the mean of several seeds' runs (`averages_seeds`, for mug;
labelgen/trust/ensemble.py). Only
`reads_truth` methods are given the dataset's per-modality ground truth; generate.py strips
it for every other method.

Baselines written as a module `labelgen/methods/<name>.py` with
`generate(reps, *, bound, config, seed) -> {modality: {split: labels}}` are registered with
`_baseline`; if the module defines a dataclass `Config`, the run's config section of that
name (`config.ulgm`, `config.mlc`) is built into it with the same strict key checking.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelgen.config import LabelgenConfig, build_dataclass
from labelgen.outputs import Labels, MethodOutput
from labelgen.stages.representations import CachedReps
from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset
from mugcore.errors import UserError

OnProgress = Callable[[float], None]
MethodFn = Callable[..., MethodOutput]


def without_uncertainty(labels: Labels, reason: str) -> MethodOutput:
    return MethodOutput(labels=labels,
                        provenance={"uncertainty": {"method": "none", "reason": reason}})


@dataclass(frozen=True)
class Method:
    name: str
    run: MethodFn  # run(ds, reps_or_None, config, seed, *, on_progress=None) -> Labels
    needs_reps: bool
    needs_snapshots: bool = False
    averages_seeds: bool = False
    reads_truth: bool = False
    description: str = ""


def all_clips(ds: MMSADataset) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, split names) over every clip, train then valid then test."""
    ids = np.concatenate([np.asarray(ds.splits[s]["id"]).astype(str) for s in SPLITS])
    splits = np.concatenate([np.full(ds.size(s), s) for s in SPLITS])
    return ids, splits


def concat_splits(per_split: dict[str, np.ndarray], ds: MMSADataset, where: str) -> np.ndarray:
    """Join {split: labels} into one array over all clips, checking each split's length."""
    parts = []
    for split in SPLITS:
        if split not in per_split:
            raise ValueError(f"{where}: no labels for split {split}")
        part = np.asarray(per_split[split], dtype=np.float32).reshape(-1)
        if len(part) != ds.size(split):
            raise ValueError(f"{where}: {len(part)} labels for {ds.size(split)} {split} clips")
        parts.append(part)
    return np.concatenate(parts)


def _baseline(name: str) -> MethodFn:
    def run(ds: MMSADataset, reps: CachedReps | None, config: LabelgenConfig, seed: int, *,
            on_progress: OnProgress | None = None) -> MethodOutput:
        del on_progress  # baselines on cached representations take seconds
        module = importlib.import_module(f"labelgen.methods.{name}")
        section = getattr(config, name)
        options = (build_dataclass(module.Config, section, where=f"{name}.")
                   if hasattr(module, "Config") else section)
        assert reps is not None
        out = module.generate(reps, bound=reps.bound, config=options, seed=seed)
        return without_uncertainty(
            {m: concat_splits(out[m], ds, f"{name} labels for {m}") for m in MODALITIES},
            f"{name} gives point labels only; mug's calibrated intervals rest on its "
            "denoising task, which this baseline does not have")

    return run


def _copy(ds: MMSADataset, reps: CachedReps | None, config: LabelgenConfig, seed: int,
          **_: Any) -> MethodOutput:
    from labelgen.methods.copy import generate
    return without_uncertainty(generate(ds), "copy repeats the multimodal label: it makes no "
                                             "estimate whose error could be stated")


def _ground_truth(ds: MMSADataset, reps: CachedReps | None, config: LabelgenConfig, seed: int,
                  **_: Any) -> MethodOutput:
    from labelgen.methods.ground_truth import generate
    return without_uncertainty(generate(ds), "the dataset's own per-modality labels, as given")


def _mug(ds: MMSADataset, reps: CachedReps | None, config: LabelgenConfig, seed: int, *,
         on_progress: OnProgress | None = None) -> MethodOutput:
    from labelgen.methods.mug import generate
    assert reps is not None
    return generate(ds, reps, config, seed, on_progress=on_progress)


METHODS: dict[str, Method] = {
    "mug": Method("mug", _mug, needs_reps=True, averages_seeds=True,
                  description="MUG: stage-1 pre-training with CPM, then MUCN meta-learning"),
    "copy": Method("copy", _copy, needs_reps=False,
                   description="the multimodal label as every uni-label (naive baseline)"),
    "ulgm": Method("ulgm", _baseline("ulgm"), needs_reps=True, needs_snapshots=True,
                   description="Self-MM's unimodal label generation module"),
    "mlc": Method("mlc", _baseline("mlc"), needs_reps=True,
                  description="Meta Label Correction on the stage-1 representations"),
    "ground-truth": Method("ground-truth", _ground_truth, needs_reps=False, reads_truth=True,
                           description="the file's own per-modality labels (upper bound)"),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
