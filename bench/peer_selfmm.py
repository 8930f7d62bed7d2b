"""Self-MM through MMSA 2.2.1, timed per iteration: the peer side of bench/bench_peer.py.

Runs inside the virtualenv that bench_peer.py builds (MMSA and its own dependencies, not this
project's), so it imports nothing of ours. It calls MMSA's own `MMSA_run('self_mm', 'mosi',
...)` with the config overrides a user would pass (feature file, BERT checkpoint, batch size)
and changes two things only:

- a CPU shim: MMSA calls `torch.cuda.set_device(args['device'])` even when that device is the
  CPU, which raises on a machine without CUDA; the shim skips the call for a CPU device;
- a stopwatch around Self-MM's forward: the interval between the starts of two consecutive
  training forwards is one iteration (data loading, forward, Self-MM's label update, backward,
  and its optimiser step every `update_epochs` batches). After `warmup + iterations` of them
  the run stops, and one JSON line goes to stdout: the timed intervals and peak RSS.

    python bench/peer_selfmm.py --data FILE.pkl --checkpoint MINILM_DIR --workdir DIR
"""

import argparse
import contextlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


class _Enough(Exception):
    """Raised from inside the training loop once enough iterations were timed."""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="MOSI-shaped MMSA pickle")
    p.add_argument("--checkpoint", type=Path, required=True, help="local BERT checkpoint dir")
    p.add_argument("--workdir", type=Path, required=True, help="MMSA's logs, models, results")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda: MMSA's gpu_ids=[0] (the first GPU)")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    install_cpu_shim()

    from MMSA.models.multiTask import SELF_MM  # the network class
    from MMSA.run import MMSA_run

    starts: list[float] = []
    forward = SELF_MM.forward

    def timed_forward(self: Any, *a: Any, **kw: Any) -> Any:
        if self.training:
            starts.append(time.perf_counter())
            if len(starts) > args.warmup + args.iterations:
                raise _Enough
        return forward(self, *a, **kw)

    SELF_MM.forward = timed_forward
    config = {
        "featurePath": str(args.data),
        "pretrained": str(args.checkpoint),
        "text_out": _hidden(args.checkpoint),
        "batch_size": args.batch_size,
    }
    started = time.perf_counter()
    with contextlib.suppress(_Enough):
        MMSA_run("self_mm", "mosi", config=config, seeds=[args.seed],
                 gpu_ids=[0] if args.device == "cuda" else [],
                 num_workers=0, verbose_level=0, model_save_dir=args.workdir / "models",
                 res_save_dir=args.workdir / "results", log_dir=args.workdir / "logs")
    steps = [b - a for a, b in zip(starts, starts[1:], strict=False)][args.warmup:]
    if len(steps) < args.iterations:
        print(f"only {len(steps)} timed iterations", file=sys.stderr)
        return 1
    print(json.dumps({
        "seconds_per_iteration": steps[:args.iterations],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2**20
                        if args.device == "cuda" else None),
        "wall_s": time.perf_counter() - started,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }))
    return 0


def install_cpu_shim() -> None:
    """MMSA calls `torch.cuda.set_device(args['device'])` even for the CPU device, which raises
    without CUDA: skip the call for a CPU device (bench/peer_mmsa_interop.py uses it too)."""
    import torch

    set_device = torch.cuda.set_device

    def cpu_shim(device: Any) -> None:
        if torch.device(device).type == "cuda":
            set_device(device)

    torch.cuda.set_device = cpu_shim


def _hidden(checkpoint: Path) -> int:
    """Width of the checkpoint's [CLS] state: Self-MM's `text_out` must match it."""
    return int(json.loads((checkpoint / "config.json").read_text())["hidden_size"])


if __name__ == "__main__":
    sys.exit(main())
