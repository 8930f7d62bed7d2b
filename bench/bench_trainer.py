"""Stage-3 (trainer) benchmark: step cost of the unimodal tasks, and test metrics per uni-label
source on a SYNTHETIC MOSI-like dataset.

    python bench/bench_trainer.py timing  [--iterations 20]
    python bench/bench_trainer.py table   [--seeds 1,2,3] [--clips 600 200 200]
    python bench/bench_trainer.py worlds  [--worlds mosi,sims,...] [--seeds 1,2,3,4,5]

`timing`: seconds per training iteration at batch 32 with the default offline BERT-type
encoder (all-MiniLM-L6-v2, fine-tuned), for the full stage-3 step (beta > 0: multimodal +
three unimodal tasks) beside a multimodal-only step (beta = 0) of the same network, the two
interleaved step by step in one process so that machine load hits both alike.

`table`: uni-labels from `mug`, `copy`, `ulgm`, `mlc` (labelgen.generate.generate_labels, the
call behind `labelgen run`) and `ground-truth`, published into a local store, then
`trainer run` on each with the fast preset, plus `--beta 0`; test metrics mean and std over
the seeds. Results go to --out as JSON and are printed as a Markdown table.

`worlds`: stage-3 evidence on robustness-suite worlds (bench/worlds.py). For each world and
seed s: the world's dataset generated with seed s, `mug` labels generated with seed s (fast
preset, as `labelgen run`), and `trainer run --seeds s` (fast preset) on mug, mug with
`--weight-by-uncertainty`, copy, `--beta 0` and the ground-truth labels, so every source
shares the dataset and the trainer seed: differences are paired by seed. Printed per world:
test MAE, Corr and Acc-2 (Non0_acc_2 for MOSI-style bounds, Mult_acc_2 for SIMS-style) mean
and std, and the paired differences mug - copy and weighted - mug with 95 % t-intervals.
Each (world, seed, source) result is kept under --workdir, so an interrupted run resumes.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from worlds import WORLDS, load_world  # noqa: E402

from labelgen.generate import generate_labels  # noqa: E402
from mugcore.data.synth import make_synthetic  # noqa: E402
from storage import LabelStore  # noqa: E402
from storage.publish import publish_result  # noqa: E402
from trainer import distributed  # noqa: E402
from trainer.cli import main as trainer_main  # noqa: E402
from trainer.config import load_config  # noqa: E402
from trainer.label_source import UniLabels, align_targets  # noqa: E402
from trainer.recipe import Stage3Recipe  # noqa: E402

TABLE_METRICS = ("Non0_acc_2", "Non0_F1_score", "Has0_acc_2", "Mult_acc_7", "MAE", "Corr")
LABEL_METHODS = ("mug", "copy", "ulgm", "mlc")


def bench_timing(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    ds = make_synthetic("mosi", n_train=32 * 4, n_valid=32, n_test=32, seed=0)
    targets = align_targets(ds, UniLabels.ground_truth(ds), "train")
    env = distributed.init("cpu")
    recipes = {}
    for name, beta in (("multitask", 0.1), ("multimodal_only", 0.0)):
        cfg = load_config("mosi", [f"beta={beta}", "batch_size=32", "seeds=[1]"])
        recipe = Stage3Recipe(config=cfg, ds=ds, targets=targets, env=env,
                              out_dir=Path(args.out).parent, seed=1, meta={}, progress=False)
        recipe.setup()
        recipe.net.train()
        recipes[name] = recipe
    batches = list(recipes["multitask"].loader)
    times: dict[str, list[float]] = {name: [] for name in recipes}
    for i in range(args.warmup + args.iterations):
        batch = batches[i % len(batches)]
        for name, recipe in recipes.items():
            started = time.perf_counter()
            recipe.train_step(batch)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - started)
    out = {name: {"median_s": float(np.median(t)), "mean_s": float(np.mean(t)),
                  "iterations": len(t)} for name, t in times.items()}
    out["overhead_median"] = out["multitask"]["median_s"] / out["multimodal_only"]["median_s"] - 1
    out["overhead_mean"] = out["multitask"]["mean_s"] / out["multimodal_only"]["mean_s"] - 1
    out["setup"] = {"encoder": "all-MiniLM-L6-v2 (fine-tuned)", "batch_size": 32,
                    "threads": args.threads, "seq_len": 50, "cpu_count": os.cpu_count()}
    print(json.dumps(out, indent=2))
    return out


def bench_table(args: argparse.Namespace) -> dict:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    n_train, n_valid, n_test = args.clips
    ds = make_synthetic("mosi", n_train=n_train, n_valid=n_valid, n_test=n_test, seed=0)
    store_dir = work / "store"
    runs: dict[str, list[str]] = {}
    label_quality: dict[str, dict] = {}
    with LabelStore.open(store_dir) as store:
        for method in args.methods.split(","):
            started = time.perf_counter()
            result = generate_labels(ds, method=method, config={"preset": "fast"}, seed=0)
            info = publish_result(store, dataset_name="bench-mosi", ds=ds, labels=result.labels,
                                  method=method, options=result.provenance["options"], seed=0,
                                  provenance=result.provenance, quality=result.quality or {})
            print(f"{method}: label set {info.id} in {time.perf_counter() - started:.0f} s",
                  flush=True)
            runs[method] = ["--label-set", str(info.id)]
            label_quality[method] = result.quality
    runs["ground-truth"] = ["--label-set", "ground-truth"]
    runs["beta 0"] = ["--beta", "0"]
    table = {}
    for name, extra in runs.items():
        out = work / "runs" / name.replace(" ", "_")
        started = time.perf_counter()
        status = trainer_main(["run", "--store", str(store_dir), "--dataset", "bench-mosi",
                               "--config", "fast", "--seeds", args.seeds, "--no-progress",
                               "--threads", str(args.threads),
                               *extra, "--out", str(out)])
        if status != 0:
            raise SystemExit(f"trainer run failed for {name}")
        metrics = json.loads((out / "metrics.json").read_text())
        table[name] = {"mean": {k: metrics["test"]["mean"][k] for k in TABLE_METRICS},
                       "std": {k: metrics["test"]["std"][k] for k in TABLE_METRICS},
                       "unilabel_quality": metrics["unilabel_quality"],
                       "seconds": time.perf_counter() - started}
        print(f"{name}: trained in {table[name]['seconds']:.0f} s", flush=True)
        print(markdown_table({name: table[name]}).splitlines()[-1], flush=True)
    print(markdown_table(table))
    return {"clips": args.clips, "seeds": args.seeds, "table": table,
            "label_quality": label_quality}


SOURCES = {"mug": ["--label-set", "{mug}"],
           "mug-weighted": ["--label-set", "{mug}", "--weight-by-uncertainty"],
           "copy": ["--label-set", "{copy}"], "beta0": ["--beta", "0"],
           "ground-truth": ["--label-set", "ground-truth"]}


def world_seed_run(world: str, seed: int, sources: list[str], work: Path,
                   threads: int) -> dict[str, dict]:
    """Test metrics of every source on one world and seed (cached per source)."""
    base = work / f"{world}_s{seed}"
    done = {src: base / src / "metrics.json" for src in sources}
    if all(p.exists() for p in done.values()):
        return {src: json.loads(p.read_text()) for src, p in done.items()}
    ds = load_world(world, seed, REPO / "runs" / "robustness" / "datasets")
    store_dir = base / "store"
    ids = {}
    with LabelStore.open(store_dir) as store:
        for method in ("mug", "copy"):
            existing = [ls for ls in store.list_label_sets() if ls.method == method]
            if existing:
                ids[method] = existing[0].id
                continue
            result = generate_labels(ds, method=method, config={"preset": "fast"}, seed=seed)
            ids[method] = publish_result(
                store, dataset_name=world, ds=ds, labels=result.labels, method=method,
                options=result.provenance["options"], seed=seed,
                provenance=result.provenance, quality=result.quality or {}).id
    out = {}
    for src in sources:
        if not done[src].exists():
            extra = [a.format(**ids) for a in SOURCES[src]]
            status = trainer_main(["run", "--store", str(store_dir), "--dataset", world,
                                   "--config", "fast", "--seeds", str(seed), "--no-progress",
                                   "--threads", str(threads), *extra,
                                   "--out", str(base / src)])
            if status != 0:
                raise SystemExit(f"trainer run failed: {world} seed {seed} {src}")
        out[src] = json.loads(done[src].read_text())
    return out


def paired(a: list[float], b: list[float]) -> str:
    """mean of a - b with a 95 % t-interval over the pairs."""
    from scipy.stats import t

    d = np.asarray(a) - np.asarray(b)
    half = t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
    return f"{d.mean():+.4f} [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}]"


def bench_worlds(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    sources = args.sources.split(",")
    work = Path(args.workdir) / "worlds"
    results: dict[str, dict[int, dict]] = {}
    for world in args.worlds.split(","):
        if world not in WORLDS:
            raise SystemExit(f"unknown world {world}; known: {', '.join(WORLDS)}")
        for seed in (int(x) for x in args.seeds.split(",")):
            started = time.perf_counter()
            results.setdefault(world, {})[seed] = world_seed_run(world, seed, sources, work,
                                                                 args.threads)
            print(f"{world} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    print(worlds_table(results, sources))
    return {"worlds": results}


def worlds_table(results: dict[str, dict[int, dict]], sources: list[str]) -> str:
    lines = []
    for world, by_seed in results.items():
        seeds = sorted(by_seed)
        first = by_seed[seeds[0]][sources[0]]
        acc = "Non0_acc_2" if first["metrics_family"] == "mosi" else "Mult_acc_2"
        metrics = ("MAE", "Corr", acc)

        def values(src: str, key: str, by_seed: dict = by_seed,
                   seeds: list[int] = seeds) -> list[float]:
            return [by_seed[s][src]["test"]["mean"][key] for s in seeds]

        gain = [by_seed[s]["mug"]["unilabel_quality"] for s in seeds]
        label_gain = {m: np.mean([100 * (g[m]["mae"] / g[m]["copy_mae"] - 1) for g in gain])
                      for m in ("text", "audio", "vision")}
        lines += [f"### {world} ({len(seeds)} seeds; mug's train uni-label MAE vs copy: "
                  + ", ".join(f"{m} {v:+.1f}%" for m, v in label_gain.items()) + ")", "",
                  "| source | " + " | ".join(metrics) + " |", "|---" * 4 + "|"]
        for src in sources:
            cells = [f"{np.mean(values(src, k)):.4f} ± {np.std(values(src, k)):.4f}"
                     for k in metrics]
            lines.append(f"| {src} | " + " | ".join(cells) + " |")
        for a, b in (("mug", "copy"), ("mug-weighted", "mug")):
            if a in sources and b in sources:
                lines.append(f"| {a} - {b} (paired, 95 % CI) | " + " | ".join(
                    paired(values(a, k), values(b, k)) for k in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


def markdown_table(table: dict) -> str:
    lines = ["| uni-labels | " + " | ".join(TABLE_METRICS) + " |",
             "|---" * (len(TABLE_METRICS) + 1) + "|"]
    for name, row in table.items():
        cells = [f"{row['mean'][k]:.3f} ± {row['std'][k]:.3f}" for k in TABLE_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    t = sub.add_parser("timing", help="seconds per iteration, multi-task vs multimodal-only")
    t.add_argument("--iterations", type=int, default=20, help="timed steps of each kind")
    t.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    t.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    t.add_argument("--out", default=str(REPO / "runs" / "bench_trainer" / "timing.json"))
    b = sub.add_parser("table", help="test metrics per uni-label source")
    b.add_argument("--clips", type=int, nargs=3, default=(600, 200, 200),
                   metavar=("TRAIN", "VALID", "TEST"), help="synthetic split sizes")
    b.add_argument("--seeds", default="1,2,3", help="trainer seeds")
    b.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    b.add_argument("--methods", default=",".join(LABEL_METHODS),
                   help="label generators to compare (besides ground-truth and beta 0)")
    b.add_argument("--workdir", default=str(REPO / "runs" / "bench_trainer"))
    b.add_argument("--out", default=str(REPO / "runs" / "bench_trainer" / "table.json"))
    w = sub.add_parser("worlds", help="stage 3 on robustness-suite worlds, paired by seed")
    w.add_argument("--worlds", default="mosi,sims,speech,coarse-noisy", help="world names")
    w.add_argument("--seeds", default="1,2,3,4,5", help="dataset, label and trainer seeds")
    w.add_argument("--sources", default=",".join(SOURCES), help="uni-label sources")
    w.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    w.add_argument("--workdir", default=str(REPO / "runs" / "bench_trainer"))
    w.add_argument("--out", default=str(REPO / "runs" / "bench_trainer" / "worlds.json"))
    args = p.parse_args()
    parts = {"timing": bench_timing, "table": bench_table, "worlds": bench_worlds}
    result = parts[args.part](args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
