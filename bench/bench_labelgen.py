"""Benchmark of uni-label generation on synthetic MOSI-like data (THE DATA IS SYNTHETIC).

For each seed s: a synthetic dataset (preset mosi, sizes 1,284 / 229 / 686 by default) is
generated with seed s, stage 1 is trained with seed s, and every method runs on the same
stage-1 representations (methods sharing a stage-1 configuration share its run, exactly
as two `labelgen run` calls with the same seed would compute it). Reported per method and
modality: MAE and Pearson r of the uni-labels against the synthetic ground truth on one
split (train by default), mean and std over seeds; plus stage-1 seconds per iteration and
stage-2 seconds.

    python bench/bench_labelgen.py --config configs/fast.yaml --seeds 0,1,2 \\
        --methods mug,copy,ulgm,mlc,mug-no-contrastive,mug-no-mmd --out bench/out/fast.json

Tune on other data (--seeds 100,101 --split valid), never on the reported seeds.
BERT timing only: --config configs/mosi.yaml --seeds 0 --methods mug \\
    --set stage1.max_iterations=5 --timing-only
"""

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labelgen.config import LabelgenConfig, load_config
from labelgen.generate import quality_of, seeded, without_truth
from labelgen.methods import all_clips, get_method
from labelgen.stages.representations import CachedReps
from labelgen.stages.stage1 import run_stage1
from mugcore.data.io import load_dataset, save_dataset
from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset
from mugcore.data.synth import make_synthetic

# bench name -> (registered method, config overrides)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mug": ("mug", {}),
    "copy": ("copy", {}),
    "ulgm": ("ulgm", {}),
    "mlc": ("mlc", {}),
    "mug-no-contrastive": ("mug", {"stage1.contrastive": False}),
    "mug-no-mmd": ("mug", {"stage2.multimodal_denoising": False}),
    "stage1-predictor": ("stage1-predictor", {}),
}


def dataset(seed: int, sizes: tuple[int, int, int], cache: Path | None) -> MMSADataset:
    path = cache / f"mosi_{sizes[0]}_{sizes[1]}_{sizes[2]}_s{seed}.pkl" if cache else None
    if path is not None and path.exists():
        return load_dataset(path)
    ds = make_synthetic("mosi", n_train=sizes[0], n_valid=sizes[1], n_test=sizes[2], seed=seed)
    if path is not None:
        save_dataset(ds, path)
    return ds


def stage1(ds: MMSADataset, config: LabelgenConfig, seed: int, key: str,
           cache: Path | None) -> tuple[CachedReps, bool]:
    digest = hashlib.sha256(json.dumps([key, config.stage1.__dict__, seed],
                                       sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache / f"reps_{digest}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as f:  # our own cache file, written below
            return pickle.load(f), True
    with seeded(seed):
        reps = run_stage1(without_truth(ds), config.stage1, seed=seed, snapshots=True)
    if path is not None:
        with path.open("wb") as f:
            pickle.dump(reps, f)
    return reps, False


def stage1_predictor(reps: CachedReps) -> dict[str, np.ndarray]:
    """Extra baseline: each modality's own stage-1 predictor output as its uni-label."""
    return {m: np.concatenate([reps.splits[s].pred[m] for s in SPLITS]) for m in MODALITIES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/fast.yaml", help="YAML config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. stage2.noise_audio=0.4 (repeatable)")
    parser.add_argument("--seeds", default="0,1,2", help="dataset and training seeds")
    parser.add_argument("--methods", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--sizes", default="1284,229,686", help="train,valid,test clips")
    parser.add_argument("--split", default="train", choices=SPLITS, help="split to score")
    parser.add_argument("--cache", type=Path, default=None,
                        help="directory caching datasets and stage-1 representations")
    parser.add_argument("--timing-only", action="store_true",
                        help="report timings, skip label quality")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = tuple(int(x) for x in args.sizes.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.methods.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(VARIANTS)}")
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any]] = []
    for seed in seeds:
        ds = dataset(seed, sizes, args.cache)
        visible = without_truth(ds)
        for name in names:
            method, extra = VARIANTS[name]
            config = load_config(args.config, overrides=[*args.set,
                                                         *(f"{k}={v}" for k, v in extra.items())])
            row: dict[str, Any] = {"method": name, "seed": seed}
            reps = None
            if method != "copy":
                reps, cached = stage1(ds, config, seed, args.config, args.cache)
                row["stage1_s_per_iter"] = reps.info["seconds_per_iteration"]
                row["stage1_s"] = reps.info["seconds"]
                row["stage1_cached"] = cached
                row["stage1_epochs"] = [r["epochs"] for r in reps.info["runs"]]
            started = time.perf_counter()
            if method == "stage1-predictor":
                assert reps is not None
                labels = stage1_predictor(reps)
            else:
                with seeded(seed):
                    labels = get_method(method).run(visible, reps, config, seed).labels
            row["stage2_s"] = time.perf_counter() - started
            if not args.timing_only:
                ids, split_of = all_clips(ds)
                full = {"clip_id": ids, "split": split_of, "multimodal": np.concatenate(
                    [np.asarray(ds.splits[s]["regression_labels"], np.float32) for s in SPLITS]),
                    **labels}
                quality = quality_of(ds, full)
                assert quality is not None
                row["quality_by_split"] = quality
                row["quality"] = quality[args.split]
            rows.append(row)
            print(json.dumps(_brief(row)), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"argv": sys.argv, "rows": rows}, indent=1))
    print(table(rows, names, args.timing_only))
    return 0


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not k.startswith("quality")}
    for m, q in row.get("quality", {}).items():
        out[m] = f"mae {q['mae']:.3f} (copy {q['copy_mae']:.3f}) r {q['corr']:.3f}"
    return out


def table(rows: list[dict[str, Any]], names: list[str], timing_only: bool) -> str:
    """Markdown: per method, mean ± std over seeds."""
    def stat(values: list[float], digits: int = 3) -> str:
        if not values:
            return "-"
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    head = "| method | stage-1 s/iter | stage-1 s | stage-2 s |"
    if not timing_only:
        head += "".join(f" {m} MAE | {m} r | {m} MAE vs copy |" for m in MODALITIES)
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        mine = [r for r in rows if r["method"] == name]
        per_iter = [r["stage1_s_per_iter"] for r in mine if "stage1_s_per_iter" in r]
        line = (f"| {name} | {stat(per_iter)}"
                f" | {stat([r['stage1_s'] for r in mine if 'stage1_s' in r], 1)}"
                f" | {stat([r['stage2_s'] for r in mine], 2)} |")
        if not timing_only:
            for m in MODALITIES:
                q = [r["quality"][m] for r in mine]
                rel = [100 * (x["mae"] / x["copy_mae"] - 1) for x in q]
                line += (f" {stat([x['mae'] for x in q])} | {stat([x['corr'] for x in q])} |"
                         f" {np.mean(rel):+.1f}% |")
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
