"""MUG's uni-labels through MMSA 2.2.1 and back, on a SYNTHETIC SIMS-shaped set.

    python bench/bench_mmsa_interop.py [--n-train 700] [--model mlf_dnn|mtfn] [--epochs 1]

What it does (WORKDIR: runs/bench-mmsa-interop):

1. Data (SYNTHETIC, not CH-SIMS): `labelgen synth --preset sims` (SIMS's feature dims 768 /
   33 / 709, H = 1, per-modality truth), registered in a store at WORKDIR/store.
2. Labels: `labelgen run --method mug --config fast` and `--method copy` publish two label
   sets; `labelgen export --label-set` writes each into an MMSA pickle
   (`regression_labels_T/_A/_V`), with its provenance side file.
3. MMSA: in the virtualenv bench_peer.py builds (MMSA 2.2.1, CPU torch), `MMSA_run(--model,
   'sims', ...)` trains MLF_DNN (or MTFN) for `--epochs` epochs on each pickle through
   bench/peer_mmsa_interop.py, which records the label arrays MMSA's own loader built (MLF_DNN
   by default: MTFN's tensor fusion has 141 M parameters at MMSA's SIMS settings). The
   bench checks that those arrays equal the exported label set's, split by split and modality
   by modality (as float32, the loader's dtype), and prints both runs' test metrics (a few
   iterations on synthetic data: a check that MMSA trains on them, not a result).
4. Self-MM: a short `MMSA_run('self_mm', 'sims', save_labels=True)` (MiniLM as its BERT,
   `--selfmm-epochs` epochs) writes its labels pickle; `labelgen import-labels` brings it into
   the store (the CPU run's aliased epochs and shuffled ids handled as documented), and
   `labelgen compare --all --split train` puts copy, mug and Self-MM side by side; its wall
   time is printed.

Everything goes to WORKDIR/results.json. Run it at low priority on a shared machine
(`nice -n 10`); the MMSA virtualenv is built once (about a minute from the on-disk CPU torch
wheel) and shared with bench_peer.py.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

MODALITY_KEYS = {"text": "T", "audio": "A", "vision": "V"}


def labelgen(*args: str, env: dict[str, str]) -> str:
    """One `labelgen` command in this virtualenv; its stdout (stderr shown on failure)."""
    cmd = [sys.executable, "-m", "labelgen.cli", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"labelgen {args[0]} failed (exit {proc.returncode})")
    return proc.stdout


def peer(python: Path, model: str, data: Path, out: Path, args: argparse.Namespace,
         epochs: int, checkpoint: Path | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(python), str(REPO / "bench" / "peer_mmsa_interop.py"), "--model", model,
           "--data", str(data), "--workdir", str(out), "--labels-out", str(out / "labels.npz"),
           "--epochs", str(epochs), "--train-samples", str(args.n_train),
           "--threads", str(args.threads)]
    if checkpoint is not None:
        cmd += ["--checkpoint", str(checkpoint)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out)
    (out / "peer.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"MMSA {model} failed (exit {proc.returncode}); log: {out}/peer.log")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def loader_matches(seen_file: Path, label_set: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per split and modality: do the arrays MMSA's loader built equal the label set's?"""
    seen = np.load(seen_file)
    out: dict[str, Any] = {}
    for split in ("train", "valid", "test"):
        rows = label_set["split"] == split  # label sets are in dataset order, split by split
        for m, key in MODALITY_KEYS.items():
            mine = label_set[m][rows].astype(np.float32)
            theirs = seen[f"{split}_{key}"]
            out[f"{split}/{m}"] = {"equal": bool(np.array_equal(mine, theirs)),
                                   "max_abs_diff": float(np.max(np.abs(mine - theirs)))}
    return out


def _made(store: Path, method: str) -> int | None:
    """The newest label set of `method` in the bench's store, if any."""
    from storage import LabelStore

    if not (store / "store.db").exists():
        return None
    with LabelStore.open(store, create=False) as s:
        found = [ls.id for ls in s.list_label_sets() if ls.method == method]
    return found[-1] if found else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=REPO / "runs" / "bench-mmsa-interop")
    p.add_argument("--venv", type=Path, default=REPO / "runs" / "bench-peer" / "mmsa-venv")
    p.add_argument("--n-train", type=int, default=700)
    p.add_argument("--n-valid", type=int, default=200)
    p.add_argument("--n-test", type=int, default=200)
    # MTFN's tensor fusion has 141 M parameters at MMSA's SIMS settings: minutes per batch on
    # a shared CPU, so the late-fusion MLF_DNN is the default here.
    p.add_argument("--model", choices=("mtfn", "mlf_dnn"), default="mlf_dnn")
    p.add_argument("--epochs", type=int, default=1, help="MMSA epochs per run")
    p.add_argument("--selfmm-epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fresh", action="store_true", help="start from an empty WORKDIR")
    args = p.parse_args()
    work = args.workdir.resolve()
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    from bench_peer import build_peer_venv

    python = build_peer_venv(args.venv.resolve())
    timings["venv_s"] = time.perf_counter() - t0

    from mugcore.models.text_encoder import default_checkpoint
    from storage import LabelStore

    data, store = work / "sims_synthetic.h5", work / "store"
    if not data.exists():
        labelgen("synth", "--preset", "sims", "--n-train", str(args.n_train), "--n-valid",
                 str(args.n_valid), "--n-test", str(args.n_test), "--out", str(data), env=env)
    t = time.perf_counter()
    ids = {}
    for method, extra in (("copy", []), ("mug", ["--config", "fast"])):
        made = _made(store, method)  # a rerun in the same WORKDIR reuses the label sets
        if made is None:
            labelgen("run", "--data", str(data), "--method", method, *extra, "--store",
                     str(store), "--dataset", "sims-synthetic", env=env)
            made = _made(store, method)
        ids[method] = made
    timings["label_sets_s"] = time.perf_counter() - t
    pickles = {}
    for method, ls in ids.items():
        pickles[method] = work / f"sims_{method}.pkl"
        labelgen("export", "--store", str(store), "--dataset", "sims-synthetic", "--label-set",
                 str(ls), "--out", str(pickles[method]), "--force", env=env)

    report: dict[str, Any] = {"data": "SYNTHETIC (mugcore.data.synth, preset sims)",
                              "splits": [args.n_train, args.n_valid, args.n_test],
                              "label_sets": ids, "mmsa": {}}
    with LabelStore.open(store, create=False) as s:
        arrays = {m: dict(s.read_labels(i)) for m, i in ids.items()}
    for method, pkl in pickles.items():
        t = time.perf_counter()
        run = peer(python, args.model, pkl, work / f"mmsa-{args.model}-{method}", args,
                   args.epochs)
        timings[f"mmsa_{args.model}_{method}_s"] = time.perf_counter() - t
        matches = loader_matches(work / f"mmsa-{args.model}-{method}" / "labels.npz",
                                 arrays[method])
        report["mmsa"][method] = {"test": run["test"], "epochs": run["epochs"],
                                  "loader_equals_label_set": all(v["equal"]
                                                                 for v in matches.values()),
                                  "per_split": matches}
        print(f"MMSA {args.model} on {method} labels: loader == label set: "
              f"{report['mmsa'][method]['loader_equals_label_set']}; test "
              f"{json.dumps(run['test'])}", flush=True)

    t = time.perf_counter()
    selfmm_dir = work / "mmsa-self_mm"
    peer(python, "self_mm", pickles["copy"], selfmm_dir, args, args.selfmm_epochs,
         checkpoint=default_checkpoint())
    timings["selfmm_s"] = time.perf_counter() - t
    saved = selfmm_dir / "results" / "self_mm-sims-labels.pkl"
    print(labelgen("import-labels", str(saved), "--store", str(store), "--dataset",
                   "sims-synthetic", env=env), flush=True)
    t = time.perf_counter()
    table = labelgen("compare", "--all", "--store", str(store), "--dataset", "sims-synthetic",
                     "--split", "train", env=env)
    timings["compare_s"] = time.perf_counter() - t
    print(table, flush=True)
    report["compare_train"] = table
    report["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    report["load_average"] = list(os.getloadavg())
    (work / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["timings_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
