"""DDP for stage 3: sharding of the global batch and gathering of predictions over ranks.

The device and the torchrun process group (gloo on CPU, NCCL on GPU) are mugcore.device's,
shared with labelgen; they are re-exported here for the recipe. Without torchrun everything
degrades to a single process, so the recipe has one code path.

Sharding keeps the *global* batch what a single process would see: the same seeded
permutation (DistributedSampler's), each rank taking every world_size-th clip of it, so rank
r's k-th local batch is its part of the k-th global batch. With DDP averaging gradients, 1
process at batch B and N processes at B/N make the same step up to float summation order.
"""

from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DistributedSampler, Sampler

from mugcore.data.batches import length_buckets
from mugcore.device import DistEnv, barrier, init, shutdown
from mugcore.errors import UserError

__all__ = ["DistEnv", "EpochOrder", "barrier", "eval_indices", "gather_predictions", "init",
           "local_batch_size", "mean_over_ranks", "set_threads", "shutdown", "train_indices"]


def set_threads(n: int) -> None:
    """torch's intra-op threads; 0 keeps its default. Spinning OpenMP threads on a busy CPU
    can make a small step ten times slower, hence the option."""
    if n < 0:
        raise UserError(f"--threads: must be >= 0, got {n}")
    if n:
        torch.set_num_threads(n)


def local_batch_size(env: DistEnv, global_batch: int) -> int:
    if global_batch % env.world_size:
        raise UserError(f"batch_size {global_batch} must be divisible by the number of "
                        f"processes ({env.world_size}) so that the global batch stays the same")
    return global_batch // env.world_size


def train_indices(env: DistEnv, n: int, *, seed: int, epoch: int, global_batch: int,
                  lengths: Tensor | None = None) -> np.ndarray:
    """This rank's clip indices for one epoch, in order; see the module docstring. With
    `lengths` (n,), global batches hold clips of like length (mugcore's length_buckets)."""
    # The tail that does not fill a global batch is dropped on every rank count alike, so
    # that no rank pads with repeated clips (which would change the global step).
    usable = n if env.world_size == 1 else n - n % global_batch
    if usable == 0:
        raise UserError(f"the train split has {n} clips, fewer than one global batch "
                        f"({global_batch}) across {env.world_size} processes")
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(n, generator=generator)
    if lengths is not None:
        order = length_buckets(order, lengths, global_batch, generator)
    # Rank r takes positions r, r + W, r + 2W, ... of the shared permutation.
    sampler = DistributedSampler(range(usable), num_replicas=env.world_size, rank=env.rank,
                                 shuffle=False, drop_last=True)
    return order[list(sampler)].numpy()


class EpochOrder(Sampler[int]):
    """`train_indices` as a sampler: call `set_epoch` before each epoch, as with DDP."""

    def __init__(self, env: DistEnv, n: int, *, seed: int, global_batch: int,
                 lengths: Tensor | None = None) -> None:
        self.env, self.n, self.seed, self.global_batch = env, n, seed, global_batch
        self.lengths = lengths
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        return train_indices(self.env, self.n, seed=self.seed, epoch=self.epoch,
                             global_batch=self.global_batch, lengths=self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        usable = self.n if self.env.world_size == 1 else self.n - self.n % self.global_batch
        return usable // self.env.world_size


def eval_indices(env: DistEnv, n: int) -> np.ndarray:
    """A contiguous, unpadded shard of 0..n-1 for evaluation (gathered afterwards)."""
    return np.array_split(np.arange(n), env.world_size)[env.rank]


def gather_predictions(env: DistEnv, index: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Every rank's (index, prediction) pairs, put back in clip order on every rank."""
    if not env.distributed:
        order = np.argsort(index, kind="stable")
        return pred[order]
    parts: list[tuple[np.ndarray, np.ndarray] | None] = [None] * env.world_size
    dist.all_gather_object(parts, (index, pred))
    all_index = np.concatenate([p[0] for p in parts if p is not None])
    all_pred = np.concatenate([p[1] for p in parts if p is not None])
    return all_pred[np.argsort(all_index, kind="stable")]


def mean_over_ranks(env: DistEnv, total: float, count: int) -> float:
    """The global mean of a per-clip quantity summed on each rank."""
    if not env.distributed:
        return total / max(count, 1)
    t = torch.tensor([total, float(count)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0] / t[1].clamp(min=1))
