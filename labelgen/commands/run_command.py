"""`labelgen run`: uni-labels for every clip of every split of a dataset file."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py

from labelgen.config import PRESETS, default_preset, load_config
from labelgen.methods import METHODS
from mugcore.data.io import load_dataset
from mugcore.data.schema import MODALITIES
from mugcore.device import DEVICES, check_device
from mugcore.errors import UserError
from mugcore.outputs import check_new_file
from mugcore.progress_display import Bar, duration, tell_estimate
from mugcore.threads import apply_threads, resolve_threads
from storage.uncertainty import has_uncertainty

if TYPE_CHECKING:
    from labelgen.generate import LabelResult
    from labelgen.progress import Estimate

OUT_SUFFIXES = (".csv", ".h5", ".hdf5")
COLUMNS = ("clip_id", "split", "multimodal", "text", "audio", "vision")
# Named when the estimate is above an hour on a CPU.
FASTER = ("--config fast (an LSTM over the `text` features, small widths)",
          "--set stage1.max_epochs=N", "--set selection.cross_fit_folds=0 (no cross-fitting)",
          "--set selection.enabled=false (3 MUCNs instead of 24)", "a GPU (--device cuda)")
# Written when the result carries per-clip uncertainty (see storage.uncertainty).
UNCERTAINTY_COLUMNS = (*(f"{m}_std" for m in MODALITIES),
                       *(f"{m}_{b}" for m in MODALITIES for b in ("lower", "upper")))


def register(subparsers: argparse._SubParsersAction) -> None:
    methods = "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())
    p = subparsers.add_parser(
        "run", help="generate uni-labels for a dataset (MUG or a baseline)",
        description="Run stages 1-2 of MUG (or a baseline) on a dataset file and write a "
                    "uni-label for every clip of every split. The same seed gives the same "
                    "labels on the same machine. Methods: " + methods + ".")
    p.add_argument("--data", type=Path, required=True, metavar="FILE",
                   help="dataset file: MMSA pickle (.pkl) or the project's HDF5 (.h5)")
    p.add_argument("--method", required=True, choices=list(METHODS), metavar="METHOD",
                   help=f"label generator, one of: {', '.join(METHODS)}")
    p.add_argument("--config", type=Path, metavar="YAML|PRESET",
                   help="options file (see configs/) or a preset name "
                        f"({', '.join(PRESETS)}); default: the dataset's preset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one option, e.g. --set stage2.noise_audio=0.4 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where stages 1-2 run: cuda when a GPU is visible (auto, the default), "
                        "cpu, or cuda (an error without a GPU). Under torchrun the "
                        "cross-fitting folds and seed-averaging runs are spread over the "
                        "ranks (gloo on the CPU, NCCL on GPUs) and rank 0 writes")
    p.add_argument("--no-contrastive", action="store_true",
                   help="ablation of mug: stage 1 without the CPM's contrastive loss")
    p.add_argument("--no-multimodal-denoising", action="store_true",
                   help="ablation of mug: stage 2 without the meta-test (multimodal denoising)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="labels file: .csv (columns clip_id,split,multimodal,text,audio,vision, "
                        "then text_std,...,vision_upper where the method gives per-clip "
                        "uncertainty) or .h5 (the same arrays plus provenance)")
    p.add_argument("--store", metavar="DIR_OR_URL",
                   help="also publish the labels to this label store (a directory, or a "
                        "postgresql+psycopg:// URL together with --files)")
    p.add_argument("--files", type=Path, metavar="DIR",
                   help="directory of the store's HDF5 files (with a PostgreSQL --store)")
    p.add_argument("--dataset", metavar="NAME",
                   help="dataset name in the store (default: the data file's stem)")
    p.add_argument("--save-representations", action="store_true",
                   help="with --out FILE.h5: also store each clip's stage-1 unimodal and "
                        "projected multimodal representations (for the t-SNE plot of "
                        "`labelgen report`)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads (default: the idle cores, at most 4; 1 on a busy machine, "
                        "where more threads only wait for each other)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.out is None and args.store is None:
        raise UserError("give --out FILE, --store DIR_OR_URL, or both")
    if args.out is not None:
        if args.out.suffix.lower() not in OUT_SUFFIXES:
            raise UserError(f"--out must end in {', '.join(OUT_SUFFIXES)}, got {args.out}")
        check_new_file(args.out, flag="--out", force=args.force)
    if args.store is not None:  # before the work, not after it
        from storage.engines import check_location

        check_location(args.store, files=args.files)
    if args.save_representations and (args.out is None or args.out.suffix.lower() == ".csv"):
        raise UserError("--save-representations needs --out FILE.h5")
    if args.save_representations and not METHODS[args.method].needs_reps:
        raise UserError(f"--save-representations: method {args.method} has no stage 1")
    if (args.no_contrastive or args.no_multimodal_denoising) and args.method != "mug":
        raise UserError("--no-contrastive and --no-multimodal-denoising apply to --method mug")
    if not args.data.is_file():
        raise UserError(f"--data {args.data} not found")
    check_device(args.device)
    threads, threads_why = resolve_threads(args.threads)  # a bad --threads before any work
    config_path, preset = _config_source(args.config)
    ds = load_dataset(args.data)
    overrides = list(args.overrides)
    if args.no_contrastive:
        overrides.append("stage1.contrastive=false")
    if args.no_multimodal_denoising:
        overrides.append("stage2.multimodal_denoising=false")
    from labelgen.generate import generate_labels  # torch: only when generating
    from mugcore.device import init, pick_device, shutdown

    gpu = pick_device(args.device).type == "cuda"
    chosen = None
    if preset is None and config_path is None:
        preset, why = default_preset(ds.attrs, ds.label_bound, gpu=gpu)
        chosen = f"preset {preset} ({why})"
    config = load_config(config_path, overrides=overrides, preset=preset)
    env = init(args.device)  # joins torchrun's process group, if any
    apply_threads(threads)
    for line in (chosen, threads_why):  # said once the options are known to be good
        _tell(env.is_main and line is not None, str(line))
    bar = Bar(enabled=not args.no_progress and env.is_main)

    def on_estimate(e: Estimate) -> None:
        extra = (f"; {duration(e.total_s + e.cross_fit_s)} if stage 1 is cross-fitted, "
                 "decided after its first training" if e.cross_fit_s else "")
        bar.close()  # the line goes above a fresh bar
        tell_estimate(e.total_s, gpu=gpu, basis=e.basis, faster=FASTER, extra=extra)

    try:
        result = generate_labels(ds, method=args.method, config=config, seed=args.seed,
                                 progress=bar.update if env.is_main else None, device=env,
                                 on_estimate=on_estimate if env.is_main else None)
    finally:
        bar.close()
        shutdown(env)
    if not env.is_main:
        return 0  # every rank holds the same labels; rank 0 writes and reports them
    if args.out is not None:
        write_labels(result, args.out, representations=args.save_representations,
                     contrastive=config.stage1.contrastive)
        print(f"wrote {len(result.labels['clip_id'])} uni-labels to {args.out}")
    if args.store is not None:
        from storage import LabelStore
        from storage.publish import publish_result

        name = args.dataset or args.data.stem
        with LabelStore.open(args.store, files=args.files) as store:
            info = publish_result(
                store, dataset_name=name, ds=ds, labels=result.labels, method=args.method,
                options=result.provenance["options"], seed=args.seed,
                provenance=result.provenance, quality=result.quality or {},
                source_format="pickle" if args.data.suffix.lower() in (".pkl", ".pickle")
                else "hdf5")
        print(f"published label set {info.id} for dataset {name} to {args.store}")
    from labelgen.trust.report import decision_lines, quality_lines

    for line in decision_lines(result.provenance):
        print(line)
    if result.quality is not None:
        for line in quality_lines(result.quality["train"]):
            print(line)
    return 0


def _tell(main: bool, line: str) -> None:
    """A line about the run's choices, on stderr (stdout is for results)."""
    if main:
        print(line, file=sys.stderr, flush=True)


def _config_source(given: Path | None) -> tuple[Path | None, str | None]:
    """(file, preset) from --config: a YAML file or, as `trainer run` takes it, a preset name."""
    if given is None or given.is_file():
        return given, None
    if str(given) in PRESETS:
        return None, str(given)
    raise UserError(f"--config {given}: no such file, and not a preset name "
                    f"({', '.join(PRESETS)})")


def write_labels(result: LabelResult, path: Path, *, representations: bool = False,
                 contrastive: bool = True) -> None:
    """CSV or label-set HDF5 by suffix, written under a temporary name and renamed."""
    temp = path.with_name(f".tmp-{uuid.uuid4().hex}{path.suffix}")
    try:
        if path.suffix.lower() == ".csv":
            _write_csv(result, temp)
        else:
            from storage.files import encode_label_set

            meta: dict[str, Any] = {**result.provenance, "quality": result.quality}
            temp.write_bytes(encode_label_set(result.labels, meta))
            if representations:
                # sklearn: only when asked
                from labelgen.reporting.report import write_representations

                assert result.reps is not None, "the method gave no representations"
                with h5py.File(temp, "a") as f:
                    write_representations(f, result.reps, contrastive=contrastive)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _write_csv(result: LabelResult, path: Path) -> None:
    labels = result.labels
    columns = COLUMNS + (UNCERTAINTY_COLUMNS if has_uncertainty(labels) else ())
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i in range(len(labels["clip_id"])):
            writer.writerow([labels["clip_id"][i], labels["split"][i],
                             *(f"{float(labels[c][i]):.9g}" for c in columns[2:])])
