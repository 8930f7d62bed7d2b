"""A worker's job on several ranks: the job's process is rank 0 and starts the others.

`labelgen run` goes to several ranks under `torchrun`. A worker runs each job in a child
process it supervises (progress, cancel, a dead worker: worker.py), so that child starts
the other ranks as `torchrun --standalone` would: processes on this machine that meet at a
free local port through torch.distributed's env:// rendezvous (MASTER_ADDR, MASTER_PORT,
RANK, WORLD_SIZE, LOCAL_RANK), rank r on GPU r when the job runs on CUDA. Every rank makes
the same `generate_labels` call, which spreads the independent trainings over the ranks
(mugcore.device.spread); rank 0 reports and returns the result. A helper rank exits when the
job's process is gone (cancelled or killed), and a helper that fails fails the job at once
instead of leaving rank 0 waiting in a collective.
"""

import multiprocessing as mp
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from mugcore.device import DistEnv, init, pick_device
from mugcore.errors import UserError

_WATCH_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _join(rank: int, world_size: int, port: int, device: str) -> DistEnv:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_RANK": str(rank)})
    return init(device)


def _helper_main(rank: int, world_size: int, port: int, device: str, features: str,
                 method: str, config: Any, seed: int, parent_pid: int, threads: int) -> None:
    def exit_if_orphaned() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_WATCH_S)
        os._exit(3)  # rank 0 is gone: the job was cancelled or failed

    threading.Thread(target=exit_if_orphaned, daemon=True).start()
    import torch

    from labelgen.generate import generate_labels
    from mugcore.data.io import load_dataset

    torch.set_num_threads(threads)  # as rank 0's: the same arithmetic on every rank
    env = _join(rank, world_size, port, device)
    generate_labels(load_dataset(features, validate=False), method=method, config=config,
                    seed=seed, device=env)


def start_ranks(ranks: int, device: str, *, features: str, method: str, config: Any,
                seed: int, on_failure: Callable[[str], None]) -> str | DistEnv:
    """`device` as it is for one rank; else start ranks 1..ranks-1 and return rank 0's
    DistEnv. `on_failure(message)` is called (from a watcher thread) if a helper fails; the
    caller then ends the job."""
    if ranks <= 1:
        return device
    import torch

    if pick_device(device).type == "cuda" and ranks > torch.cuda.device_count():
        raise UserError(f"ranks={ranks}: one GPU per rank, but {torch.cuda.device_count()} "
                        "are visible")
    port = free_port()
    ctx = mp.get_context("spawn")
    helpers = [ctx.Process(target=_helper_main, daemon=True, name=f"labelgen-rank-{r}",
                           args=(r, ranks, port, device, features, method, config, seed,
                                 os.getpid(), torch.get_num_threads()))
               for r in range(1, ranks)]
    for helper in helpers:
        helper.start()

    def watch() -> None:
        while True:
            for r, helper in enumerate(helpers, start=1):
                if helper.exitcode not in (None, 0):
                    on_failure(f"rank {r} of {ranks} failed (exit code {helper.exitcode}); "
                               "its error is in the worker's log")
                    return
            if all(h.exitcode == 0 for h in helpers):
                return
            time.sleep(_WATCH_S)

    threading.Thread(target=watch, daemon=True).start()
    return _join(0, ranks, port, device)
