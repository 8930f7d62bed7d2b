"""generate_labels: a dataset in, a uni-label for every clip of every split out.

The one entry point used by `labelgen run`, the worker and the benchmark. It seeds every
random source, runs stage 1 when the method needs representations, runs the method (several
times and averaged, for `mug` on small train splits: labelgen/trust/ensemble.py), checks the
labels, and records provenance. Ground-truth uni-labels (when the file has them) are
removed from the dataset before any method but `ground-truth` sees it; quality figures
against them are computed only after the labels exist.

Device and ranks (`device`: a name for one process, or mugcore.device's DistEnv under
torchrun): every stage runs on the device. With several runs to average, the runs are spread
over the ranks, each run whole on one rank; with one run, its stage-1 trainings (cross-fitting
folds) are spread instead and the method runs on rank 0. Every rank returns the same result;
the caller lets rank 0 write it. Each run and training seeds itself from its own seed, so the
labels do not depend on the number of ranks.
"""

import contextlib
import dataclasses
import platform
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import torch

from labelgen.config import LabelgenConfig, config_from_dict, preset_for_dataset
from labelgen.methods import Method, all_clips, get_method
from labelgen.outputs import MethodOutput
from labelgen.progress import Cancelled as Cancelled  # public here (docs/architecture.md)
from labelgen.progress import Estimate, ProgressFn, StopFn, Tracker
from labelgen.stages.representations import CachedReps
from labelgen.stages.stage2 import effective_epochs
from labelgen.trust.cross_fit import run_stage1_chosen
from labelgen.trust.ensemble import average_outputs, run_seeds
from mugcore.data.hashing import dataset_hash
from mugcore.data.schema import MODALITIES, SPLITS, TRUTH_KEYS, MMSADataset
from mugcore.device import DistEnv, local, spread
from mugcore.metrics import unilabel_quality

VERSIONED_PACKAGES = ("mug-unilabels", "torch", "numpy", "transformers", "h5py")


@dataclass
class LabelResult:
    # clip_id, split, multimodal, text, audio, vision; and storage.uncertainty's nine arrays
    # when the method gives them
    labels: dict[str, np.ndarray]
    provenance: dict[str, Any]
    quality: dict[str, dict[str, dict[str, float]]] | None  # split -> modality -> figures
    reps: CachedReps | None = None  # stage-1 representations, for methods that have them


def generate_labels(ds: MMSADataset, *, method: str,
                    config: LabelgenConfig | Mapping[str, Any] | None = None, seed: int = 0,
                    progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None,
                    device: str | DistEnv = "cpu",
                    on_estimate: Callable[[Estimate], None] | None = None) -> LabelResult:
    """Uni-labels of `ds` by `method` (see labelgen.methods.METHODS) on `device` (module doc).
    `progress(where, fraction, eta_s)` names the stage, run, fold and epoch and covers the
    whole call; `on_estimate` gets the first estimate of the total, after a few timed steps
    (labelgen/progress.py)."""
    env = device if isinstance(device, DistEnv) else local(device)
    spec = get_method(method)
    config = resolve_config(ds, config, gpu=env.device.type == "cuda")
    visible = ds if spec.reads_truth else without_truth(ds)
    started = time.perf_counter()
    n_train = visible.size("train")
    seeds = (run_seeds(config, n_train=n_train, seed=seed) if spec.averages_seeds else [seed])
    tracker = _tracker(spec, config, n_train=n_train, runs=len(seeds), progress=progress,
                       should_stop=should_stop, on_estimate=on_estimate)
    timings = tracker.timings
    with seeded(seed):
        reps_of_runs, outputs = _runs(visible, spec, config, seeds, tracker, env)
    tracker.done()
    reps = reps_of_runs[0]
    generated = average_outputs(outputs, seeds, n_train=n_train,
                                below=config.selection.ensemble_below)
    timings["total_s"] = time.perf_counter() - started

    clip_ids, splits = all_clips(ds)
    multimodal = np.concatenate([np.asarray(ds.splits[s]["regression_labels"], np.float32)
                                 for s in SPLITS])
    labels = {"clip_id": clip_ids, "split": splits, "multimodal": multimodal}
    for key, values in {**generated.labels, **generated.uncertainty}.items():
        values = np.asarray(values, dtype=np.float32)
        if values.shape != multimodal.shape or not np.isfinite(values).all():
            raise RuntimeError(f"method {method} gave {key} of shape {values.shape} or "
                               f"non-finite values; expected {multimodal.shape} finite")
        labels[key] = values
    missing = [m for m in MODALITIES if m not in labels]
    assert not missing, f"method {method} gave no labels for {missing}"
    provenance = {
        "method": method,
        "options": config.to_dict(),
        "seed": int(seed),
        "versions": package_versions(),
        "dataset_hash": dataset_hash(ds),
        "dataset_attrs": {k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float)},
        "label_bound": ds.label_bound,
        "timings": timings,
        "device": env.info(),
    }
    if reps is not None:
        provenance["stage1"] = reps.info
    provenance.update(generated.provenance)
    return LabelResult(labels=labels, provenance=provenance, quality=quality_of(ds, labels),
                       reps=reps)


def _tracker(spec: Method, config: LabelgenConfig, *, n_train: int, runs: int,
             progress: ProgressFn | None, should_stop: StopFn | None,
             on_estimate: Callable[[Estimate], None] | None) -> Tracker:
    """The progress of this call: stage 2's steps are known up front for mug."""
    sel = config.selection
    folds = 0 if config.stage1.cross_fit_folds or not sel.enabled else sel.cross_fit_folds
    epochs = steps = None
    if spec.name == "mug":
        epochs = effective_epochs(config.stage2, n_train)
        steps = epochs * -(-n_train // config.stage2.batch_size)
    return Tracker(runs=runs, stage1=spec.needs_reps, cross_fit_folds=folds,
                   stage2_steps=steps, stage2_epochs=epochs,
                   method_stage="stage2" if spec.needs_reps else spec.name,
                   progress=progress, should_stop=should_stop, on_estimate=on_estimate)


def _runs(ds: MMSADataset, spec: Method, config: LabelgenConfig, seeds: list[int],
          tracker: Tracker, env: DistEnv) -> tuple[list[CachedReps | None], list[MethodOutput]]:
    """Stage 1 of every run (when the method needs it), then the method on each: one run, or
    several to average (labelgen/trust/ensemble.py). Several runs each reseed with their own seed;
    one run keeps the random stream of the caller's `seeded`. Spread over env's ranks as the
    module doc says."""
    several = len(seeds) > 1
    # Several runs: whole runs go to the ranks, and a run's stage 1 keeps to its own rank.
    # One run: every rank takes part in its stage 1, which spreads its trainings.
    runs_env, stage1_env = (env, env.alone()) if several else (env.alone(), env)

    def run_seeded(s: int) -> contextlib.AbstractContextManager[None]:
        return seeded(s) if several else contextlib.nullcontext()

    reps_of_runs: list[CachedReps | None] = [None] * len(seeds)
    if spec.needs_reps:
        with tracker.stage_of("stage1"):
            def stage1(r: int) -> CachedReps:
                with run_seeded(seeds[r]):
                    return run_stage1_chosen(ds, config, seed=seeds[r],
                                             snapshots=spec.needs_snapshots,
                                             on_progress=tracker.stage1(r), env=stage1_env)

            reps_of_runs = list(spread(runs_env, len(seeds), stage1))
    with tracker.stage_of(tracker.method_stage):
        def method(r: int) -> MethodOutput:
            reps = reps_of_runs[r]
            if reps is not None:  # on this rank's device, wherever stage 1 ran
                reps = dataclasses.replace(reps, device=str(env.device))
            with run_seeded(seeds[r]):
                return spec.run(ds, reps, config, seeds[r], on_progress=tracker.method(r))

        # every rank holds every run's representations, so any rank can run any method
        outputs = spread(env, len(seeds), method)
    return reps_of_runs, outputs


def resolve_config(ds: MMSADataset, config: LabelgenConfig | Mapping[str, Any] | None, *,
                   gpu: bool = False) -> LabelgenConfig:
    """A LabelgenConfig as is; a mapping or None on top of the dataset's default preset
    (labelgen.config.default_preset: frozen BERT unless the run has a GPU)."""
    if isinstance(config, LabelgenConfig):
        config.check()
        return config
    return config_from_dict(config or {},
                            preset=preset_for_dataset(ds.attrs, ds.label_bound, gpu=gpu))


def without_truth(ds: MMSADataset) -> MMSADataset:
    """The same dataset without per-modality ground truth (arrays shared, not copied)."""
    hidden = set(TRUTH_KEYS.values())
    return MMSADataset(splits={s: {k: v for k, v in split.items() if k not in hidden}
                               for s, split in ds.splits.items()}, attrs=dict(ds.attrs))


def quality_of(ds: MMSADataset,
               labels: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]] | None:
    """Per split, uni-label MAE and correlation against ground truth, beside copy's."""
    if not ds.has_truth:
        return None
    out = {}
    for split in SPLITS:
        rows = labels["split"] == split
        truth = {m: ds.splits[split][TRUTH_KEYS[m]] for m in MODALITIES}
        out[split] = unilabel_quality({m: labels[m][rows] for m in MODALITIES}, truth,
                                      labels["multimodal"][rows])
    return out


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch; deterministic torch kernels while inside.

    Deterministic mode is switched on only where CUDA is present: the CPU kernels we use are
    deterministic already, and the switch imports torch._inductor, which costs seconds.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if not torch.cuda.is_available():
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    # warn_only: a kernel without a deterministic variant warns instead of failing the run
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
