"""`trainer run`: stage-3 multi-task training on the uni-labels of a label store."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mugcore.data.schema import MODALITIES, TRUTH_KEYS, MMSADataset
from mugcore.errors import UserError
from mugcore.ids import plain_int
from mugcore.outputs import check_output_dir, refuse_symlinks, replace_file
from mugcore.progress_display import duration, tell_estimate
from mugcore.threads import apply_threads, resolve_threads
from trainer.config import PRESETS, TrainerConfig, load_config, parse_seeds
from trainer.label_source import (
    GROUND_TRUTH,
    LATEST,
    UniLabels,
    align_targets,
    open_source,
    uncertainty_weights,
)
from trainer.report import markdown_report, plot_curves, summarise, write_json

if TYPE_CHECKING:  # torch and scikit-learn load only when a command runs (fast --help)
    from trainer import distributed


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="train the multimodal task plus unimodal tasks on stored uni-labels",
        description="Stage 3 of MUG: L = L1(P_M(h_M), y_M) + beta * sum_u L1(P_u(h_u), y_u). "
                    "Pulls the uni-labels from a label store (API URL or local store), trains "
                    "one model per seed, keeps the checkpoint with the best validation MAE and "
                    "reports test metrics (mean and std over seeds). Runs unchanged under "
                    "`torchrun --nproc_per_node N` (only rank 0 writes).")
    p.add_argument("--store", required=True, metavar="DIR_OR_URL",
                   help="label store: an API URL (http://host:port), a store directory, or a "
                        "postgresql+psycopg:// URL (with --files)")
    p.add_argument("--dataset", required=True, metavar="NAME_OR_ID",
                   help="dataset in the store, by name or numeric id")
    p.add_argument("--label-set", default=LATEST, metavar="ID|latest|ground-truth",
                   help="uni-labels to train the unimodal tasks on: a label-set id, 'latest' "
                        "(newest label set of the dataset; default) or 'ground-truth' (the "
                        "dataset's own per-modality labels)")
    p.add_argument("--config", metavar="PRESET|YAML",
                   help=f"preset ({', '.join(PRESETS)}) or YAML file (default: the preset "
                        "named by the dataset's 'preset' attribute, else built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field after --config, e.g. --set epochs=5 or "
                        "--set net.dropout=0 (repeatable)")
    p.add_argument("--seeds", metavar="1,2,3", help="comma-separated seeds (overrides config)")
    p.add_argument("--beta", type=float, metavar="B",
                   help="weight of the unimodal tasks (overrides config); 0 trains the "
                        "multimodal task alone (the 'no unimodal task' ablation)")
    p.add_argument("--weight-by-uncertainty", action="store_true",
                   help="weight each clip's unimodal losses by 1 / (1 + (std / median std)^2), "
                        "scaled to mean 1, from the label set's per-clip uncertainty (mug "
                        "label sets carry one; copy and ground-truth do not)")
    p.add_argument("--metrics", choices=("auto", "mosi", "sims"),
                   help="metric family (default: from config, 'auto' = from the label bound)")
    p.add_argument("--data", type=Path, metavar="FILE",
                   help="local copy of the dataset (.h5 or MMSA .pkl) to take features from; "
                        "its clip ids must match the store's")
    p.add_argument("--token", help="bearer token for the API (default: $MUG_READ_TOKEN)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="where features downloaded from the API are cached (default ~/.cache/mug)")
    p.add_argument("--files", metavar="DIR",
                   help="HDF5 file root of a PostgreSQL store (with a postgresql:// --store)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="device (default: cuda when available)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per process (default: the idle cores shared by the "
                        "processes of the run, at most 4; 1 on a busy machine, where more "
                        "threads only wait for each other)")
    p.add_argument("--force", action="store_true",
                   help="replace the run already in --out (its seed_*/ folders, "
                        f"{', '.join(RUN_OUTPUTS)}; other files stay)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in --out (finished seeds are kept)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory: metrics.json, best.pt, report.md, curves.png, seed_*/")
    p.set_defaults(func=cmd_run)


def _config(args: argparse.Namespace, ds: MMSADataset, *, gpu: bool,
            tell: bool) -> TrainerConfig:
    preset = args.config or (ds.attrs.get("preset") if ds.attrs.get("preset") in PRESETS
                             else None)
    overrides = list(args.overrides)
    if args.config is None and not gpu:
        # Fine-tuning BERT on a CPU takes hours per seed; frozen, its [CLS] states are
        # computed once. A --set net.finetune_bert=true that follows still wins.
        overrides.insert(0, "net.finetune_bert=false")
        if tell:
            print(f"preset {preset or 'built-in defaults'} with net.finetune_bert=false (no "
                  "GPU: BERT frozen, its [CLS] states computed once; --config NAME keeps the "
                  "preset's fine-tuning)", file=sys.stderr)
    if args.seeds:
        overrides.append(f"seeds={parse_seeds(args.seeds)}")
    if args.beta is not None:
        overrides.append(f"beta={args.beta!r}")
    if args.metrics:
        overrides.append(f"metrics={args.metrics}")
    if args.weight_by_uncertainty:
        overrides.append("weight_by_uncertainty=true")
    return load_config(preset, overrides)


def _train_targets(ds: MMSADataset, labels: UniLabels | None) -> dict[str, np.ndarray] | None:
    return align_targets(ds, labels, "train") if labels is not None else None


def _quality(ds: MMSADataset, targets: dict[str, np.ndarray] | None) -> dict[str, Any] | None:
    """Uni-label quality on the train split against the dataset's ground truth, if any."""
    if targets is None or not ds.has_truth:
        return None
    from mugcore.metrics import unilabel_quality

    train = ds.splits["train"]
    truth = {m: np.asarray(train[TRUTH_KEYS[m]]) for m in MODALITIES}
    return unilabel_quality(targets, truth, np.asarray(train["regression_labels"]))


# What a run writes into --out beside its seed_N/ folders; --force removes exactly these.
RUN_OUTPUTS = ("best.pt", "metrics.json", "report.md", "curves.png")


def _previous_run(out: Path) -> list[Path]:
    if not out.is_dir():
        return []
    seeds = [p for p in out.glob("seed_*") if p.is_dir() and plain_int(p.name[5:]) is not None]
    return sorted(seeds + [out / n for n in RUN_OUTPUTS if (out / n).exists()])


def _run_paths(out: Path) -> list[Path]:
    """Every path a run writes by name in --out: its outputs, seed_N/ folders and their files."""
    if not out.is_dir():
        return []
    seeds = list(out.glob("seed_*"))
    inside = [p for seed in seeds if seed.is_dir() and not seed.is_symlink()
              for p in seed.iterdir()]
    return [out / n for n in RUN_OUTPUTS] + seeds + inside


def _check_out(args: argparse.Namespace) -> None:
    """Before any work: --out can be written, and a run there is replaced only on request."""
    if args.force and args.resume:
        raise UserError("--force replaces the run in --out, --resume continues it: pass one")
    check_output_dir(args.out, flag="--out")
    refuse_symlinks(_run_paths(args.out), flag="--out")
    previous = _previous_run(args.out)
    if previous and not (args.force or args.resume):
        shown = ", ".join(p.name for p in previous[:4]) + (", ..." if len(previous) > 4 else "")
        raise UserError(f"--out {args.out}: holds a run already ({shown}); pass --force to "
                        "replace it or --resume to continue it")


def cmd_run(args: argparse.Namespace) -> int:
    _check_out(args)
    from trainer import distributed

    threads, why = resolve_threads(args.threads)  # a bad --threads before any work
    apply_threads(threads)
    env = distributed.init(args.device)
    try:
        # The config as far as the flags give it: a refusal before any data is read.
        _check_device_options(load_config(args.config, args.overrides), env)
        return _run(args, env, threads_told=why)
    except KeyboardInterrupt:
        if env.is_main:  # what is kept and how to go on, instead of a bare "interrupted"
            print(f"trainer: interrupted; each seed's last finished epoch is in "
                  f"{args.out}/seed_N/last.pt: rerun with --resume to continue from it",
                  file=sys.stderr)
        return 130
    finally:
        distributed.shutdown(env)


def _check_device_options(cfg: TrainerConfig, env: distributed.DistEnv) -> None:
    # bf16 autocast of the LSTMs needs a oneDNN built with bf16 LSTM kernels on a CPU, which
    # many CPUs lack (the step fails deep inside torch): refused here, whatever the CPU.
    if cfg.bf16_autocast and env.device.type == "cpu":
        raise UserError("bf16_autocast=true: not supported on the CPU (this run's device); "
                        "drop it or run on a GPU (--device cuda)")


def _run(args: argparse.Namespace, env: distributed.DistEnv, *, threads_told: str) -> int:
    from trainer.recipe import Stage3Recipe, family_name

    started = time.perf_counter()
    source = open_source(args.store, args.dataset, data_file=args.data, token=args.token,
                         cache_dir=args.cache_dir, files=args.files)
    ds = source.load_dataset()
    gpu = env.device.type == "cuda"
    cfg = _config(args, ds, gpu=gpu, tell=env.is_main)
    _check_device_options(cfg, env)  # a dataset's own preset, before --out is touched
    # beta 0 trains no unimodal task; labels are then only read when named explicitly.
    wants_labels = cfg.beta > 0 or args.label_set != LATEST
    labels = source.load_labels(args.label_set, ds) if wants_labels else None
    targets = _train_targets(ds, labels)
    weights = (uncertainty_weights(ds, labels, "train")
               if cfg.weight_by_uncertainty and labels is not None and cfg.beta > 0 else None)
    dataset_info = {**source.dataset_info(), "synthetic": bool(ds.attrs.get("synthetic")),
                    "label_bound": ds.label_bound}
    label_info = _label_info(labels, args.label_set)
    meta = {"dataset": _plain(dataset_info), "label_set": _plain(label_info)}

    out: Path = args.out
    if env.is_main:
        print(threads_told, file=sys.stderr)  # once the inputs passed: a refusal stays one line
        if args.force:  # the data and labels loaded: only now is the old run given up
            for path in _previous_run(out):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        out.mkdir(parents=True, exist_ok=True)
    runs, histories, recipes = [], {}, []
    for seed in cfg.seeds:
        recipe = Stage3Recipe(config=cfg, ds=ds, targets=targets, env=env, out_dir=out,
                              seed=seed, meta=meta, progress=not args.no_progress,
                              weights=weights)
        setup_started = time.perf_counter()
        recipe.setup(resume=args.resume)
        recipe.where = f"stage3 seed {seed} ({len(runs) + 1}/{len(cfg.seeds)})"
        if not runs and env.is_main:
            recipe.on_step = _estimator(recipe, cfg, gpu=gpu, started=started,
                                        setup_s=time.perf_counter() - setup_started)
        state = recipe.train()
        recipe.load_best()
        runs.append({"seed": seed, "best_epoch": state.best_epoch,
                     "epochs_trained": state.epoch,
                     "seconds_per_iteration": state.seconds_per_iteration,
                     "valid": recipe.evaluate("valid"), "test": recipe.evaluate("test")})
        histories[seed] = state.history
        recipes.append(recipe)
    if not env.is_main:
        return 0

    best = min(runs, key=lambda r: r["valid"]["MAE"])
    replace_file(out / "best.pt",
                 lambda tmp: shutil.copyfile(out / f"seed_{best['seed']}" / "best.pt", tmp))
    result = {
        "dataset": meta["dataset"],
        "label_set": meta["label_set"],
        "config": cfg.to_dict(),
        "net_config": _plain(vars(recipes[0].net_config)),
        "metrics_family": family_name(cfg.metrics, ds.label_bound),
        "world_size": env.world_size,
        "seconds_per_iteration": float(np.mean([r["seconds_per_iteration"] for r in runs])),
        "best_checkpoint": {"path": "best.pt", "seed": best["seed"]},
        "per_seed": runs,
        "valid": summarise([r["valid"] for r in runs]),
        "test": summarise([r["test"] for r in runs]),
        "unilabel_quality": _quality(ds, targets),
        "histories": {str(k): v for k, v in histories.items()},
    }
    plot_curves(histories, out / "curves.png")
    write_json(result, out / "metrics.json")
    replace_file(out / "report.md", lambda tmp: tmp.write_text(markdown_report(result)))
    _print_summary(result, out)
    return 0


# Named when the estimate is above an hour on a CPU.
FASTER = ("--config fast (an LSTM over the `text` features, small widths)",
          "--seeds 1 (one seed)", "--set epochs=N", "a GPU (--device cuda)")
TIMED_STEPS = 5


def _estimator(recipe: Any, cfg: TrainerConfig, *, gpu: bool, started: float,
               setup_s: float) -> Callable[[], None]:
    """Times the first steps of the first seed, then tells the estimate of the whole run:
    the time already spent (loading, the first seed's setup), every seed at its most epochs
    (validation counted as a third of a step per clip), and the valid and test clips' share
    of the setup (with a frozen BERT, their [CLS] states are computed when first evaluated,
    as the train clips' were in the setup)."""
    count, first = 0, 0.0

    def on_step() -> None:
        nonlocal count, first
        count += 1
        if count == 1:  # the first step pays for warm-up; time the next ones
            first = time.perf_counter()
        elif count == 1 + TIMED_STEPS:
            rate = (time.perf_counter() - first) / TIMED_STEPS
            steps = len(recipe.loader)
            ds = recipe.ds
            n_train = max(ds.size("train"), 1)
            valid_share = ds.size("valid") / n_train / 3
            later = setup_s * (ds.size("valid") + ds.size("test")) / n_train
            total = (time.perf_counter() - started + later
                     + rate * steps * (1 + valid_share) * cfg.epochs * len(cfg.seeds))
            tell_estimate(total, gpu=gpu, faster=FASTER,
                          basis=f"{rate:.3f} s per step, {steps} steps per epoch, at most "
                                f"{cfg.epochs} epochs x {len(cfg.seeds)} seed(s), after "
                                f"{duration(time.perf_counter() - started)} of loading and "
                                "set-up; early stopping can end sooner")
    return on_step


def _label_info(labels: UniLabels | None, requested: str) -> dict[str, Any]:
    if labels is None:
        return {"id": None, "method": "none (beta = 0)"}
    info = dict(labels.info)
    info.setdefault("id", requested)
    if requested == GROUND_TRUTH:
        info["method"] = GROUND_TRUTH
    return {k: info.get(k) for k in ("id", "method", "seed", "quality", "options") if k in info}


def _plain(obj: Any) -> Any:
    """JSON- and torch.load(weights_only)-safe copy: plain containers, str/int/float/bool."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def _print_summary(result: dict[str, Any], out: Path) -> None:
    test = result["test"]
    print(f"test metrics over {len(result['per_seed'])} seed(s) "
          f"({result['metrics_family']} family; uni-labels: {result['label_set'].get('method')}):")
    for name, mean in test["mean"].items():
        print(f"  {name:>14}: {mean:.4f} ± {test['std'][name]:.4f}")
    print(f"wrote {out / 'metrics.json'}, {out / 'report.md'}, {out / 'curves.png'}, "
          f"{out / 'best.pt'}", file=sys.stderr)
