"""The device of a run and its torchrun process group, for labelgen and trainer alike.

`--device auto|cpu|cuda` means the same everywhere: `auto` is CUDA when torch sees a GPU, else
the CPU; `cuda` without a GPU is a one-line `UserError` raised before any work. Under torchrun
(WORLD_SIZE in the environment) `init` joins the process group (gloo on the CPU, NCCL on GPUs)
and gives rank r the GPU `cuda:LOCAL_RANK`; without torchrun everything here is one process,
so callers have one code path.

`spread` runs independent tasks (cross-fitting folds, seed-averaging runs) over the ranks:
rank r runs tasks r, r + W, r + 2W, ... and every rank receives every result in task order.
Each task seeds itself from its own index, never from the rank, so the results do not depend
on how many ranks there are.

torch is imported inside the functions: CLIs import this module for their --device choices,
and `--help` must not wait for torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from mugcore.errors import UserError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
T = TypeVar("T")


def check_device(name: str, *, flag: str = "--device") -> str:
    """`name` if this machine can honour it (before any work); else a UserError naming `flag`."""
    import torch

    if name not in DEVICES:
        raise UserError(f"{flag}: expected one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{flag} cuda: no CUDA device is available (torch {torch.__version__}"
                        f"{'' if torch.version.cuda else ', built without CUDA'})")
    return name


def pick_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """The torch device `name` means on this machine, for the process of `local_rank`."""
    import torch

    use_cuda = torch.cuda.is_available() if check_device(name) == "auto" else name == "cuda"
    if not use_cuda:
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"local rank {local_rank} has no GPU of its own "
                        f"({torch.cuda.device_count()} visible)")
    # cuBLAS is deterministic only with a fixed workspace; it must be set before its first
    # use, and generate.seeded asks for deterministic kernels on CUDA.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device(f"cuda:{local_rank}")


def describe(device: torch.device | str) -> str:
    """One line naming the device, for logs and provenance."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return f"cpu ({torch.get_num_threads()} threads)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A small CPU tensor (batch positions, noise) on `device` without stalling a GPU: a plain
    copy to a GPU waits for every queued kernel first, so each step would start on an idle
    GPU. Pinned, the copy is queued like a kernel; on the CPU nothing is copied."""
    import torch

    device = torch.device(device)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files, prints reports and shows progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def alone(self) -> DistEnv:
        """This process by itself, on the same device: for work inside a task of `spread`,
        which must not wait on ranks busy with other tasks."""
        return replace(self, rank=0, world_size=1)

    def info(self) -> dict[str, Any]:
        """What provenance records about where a run ran."""
        return {"device": describe(self.device), "ranks": self.world_size}


def local(device: str = "cpu") -> DistEnv:
    """One process on `device`, whatever the environment says (the worker's jobs, tests)."""
    return DistEnv(rank=0, world_size=1, local_rank=0, device=pick_device(device))


def init(device: str = "auto") -> DistEnv:
    """Join the torchrun process group if there is one; pick this rank's device."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank=local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shutdown(env: DistEnv) -> None:
    import torch.distributed as dist

    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        import torch.distributed as dist

        dist.barrier()


def spread(env: DistEnv, n_tasks: int, task: Callable[[int], T]) -> list[T]:
    """[task(0), ..., task(n_tasks - 1)] on every rank, each rank running its share (module
    doc). Results travel pickled, so they should be numpy arrays and plain data, not models."""
    mine = {i: task(i) for i in range(env.rank, n_tasks, env.world_size)}
    if not env.distributed:
        return [mine[i] for i in range(n_tasks)]
    import torch.distributed as dist

    parts: list[dict[int, T] | None] = [None] * env.world_size
    dist.all_gather_object(parts, mine)
    merged: dict[int, T] = {}
    for part in parts:
        merged.update(part or {})
    return [merged[i] for i in range(n_tasks)]
