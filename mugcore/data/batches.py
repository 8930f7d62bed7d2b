"""Torch batching of one MMSADataset split.

A split's arrays become tensors once; a batch is gathered by indexing those tensors
(no per-clip numpy work). Each batch's audio/vision padding is trimmed to the longest
real sequence in the batch: the encoders pack by length, so this changes speed only.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from mugcore.data.schema import LENGTH_KEYS, MODALITIES, MMSADataset
from mugcore.errors import DatasetError, UserError

Batch = dict[str, Tensor]


def _float(a: ArrayLike) -> Tensor:
    # from_numpy shares memory when the array already is contiguous float32.
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def split_tensors(
    ds: MMSADataset, split: str, targets: Mapping[str, ArrayLike] | None = None
) -> dict[str, Tensor]:
    """Every field a batch carries, as tensors over the whole split (first axis: clip)."""
    if split not in ds.splits:
        raise UserError(f"split {split!r} is not in the dataset (has {', '.join(ds.splits)})")
    s = ds.splits[split]
    n = ds.size(split)
    text_bert = np.asarray(s["text_bert"])
    out = {
        "index": torch.arange(n),
        "text": _float(s["text"]),
        "text_bert": torch.from_numpy(np.rint(text_bert).astype(np.int64)),
        "y": _float(s["regression_labels"]),
    }
    for m in ("audio", "vision"):
        out[m] = _float(s[m])
        length_key = LENGTH_KEYS[m]
        seq_len = out[m].shape[1]
        if length_key in s:
            lengths = np.asarray(s[length_key]).astype(np.int64).reshape(-1)
            bad = np.flatnonzero((lengths < 0) | (lengths > seq_len))
            if bad.size:
                raise DatasetError(
                    f"{split}/{length_key}[{bad[0]}] = {lengths[bad[0]]} is outside "
                    f"[0, {seq_len}] ({bad.size} such clips)"
                )
            out[length_key] = torch.from_numpy(lengths)
        else:  # aligned data: every clip fills the whole sequence
            out[length_key] = torch.full((n,), seq_len, dtype=torch.long)
    for m, values in (targets or {}).items():
        if m not in MODALITIES:
            raise UserError(f"targets: unknown modality {m!r} (expected one of {MODALITIES})")
        t = _float(values).reshape(-1)
        if t.shape[0] != n:
            raise UserError(f"targets[{m!r}] has {t.shape[0]} values but split {split} has {n}")
        out[f"y_{m}"] = t
    for key, t in out.items():
        if t.shape[0] != n:
            raise DatasetError(f"{split}/{key} has {t.shape[0]} entries but {n} labels")
    return out


class _Positions(Dataset[int]):
    """Items are positions in the split; the collate function gathers the tensors."""

    def __init__(self, indices: Tensor) -> None:
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> int:
        return int(self.indices[i])


class _Gather:
    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors = tensors

    def __call__(self, positions: list[int]) -> Batch:
        idx = torch.tensor(positions, dtype=torch.long)
        batch = {key: t[idx] for key, t in self.tensors.items()}
        for m, length_key in LENGTH_KEYS.items():
            longest = max(int(batch[length_key].max()), 1)
            batch[m] = batch[m][:, :longest]  # (B, L, D) -> (B, longest, D)
        return batch


def make_loader(
    ds: MMSADataset,
    split: str,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    targets: Mapping[str, ArrayLike] | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
    sampler: Sampler[int] | None = None,
) -> DataLoader:
    """Batches of one split: dicts with `index` (position in the split), `text`, `text_bert`
    (long), `audio`, `audio_lengths`, `vision`, `vision_lengths`, `y`, and `y_<modality>` for
    each entry of `targets` (arrays over the whole split).

    `indices` restricts the loader to those clips (e.g. one fold). Shuffling is seeded: the
    same seed gives the same order, epoch after epoch of a fresh loader. `sampler` (e.g. a
    DistributedSampler over range(len(indices or split))) replaces the built-in order.
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if sampler is not None and shuffle:
        raise UserError("pass shuffle=False with a sampler: the sampler decides the order")
    tensors = split_tensors(ds, split, targets)
    n = ds.size(split)
    if indices is None:
        positions = torch.arange(n)
    else:
        positions = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= n):
            raise UserError(f"indices must lie in [0, {n}) for split {split}")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        _Positions(positions),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=generator,
        collate_fn=_Gather(tensors),
    )


def move_batch(batch: Batch, device: torch.device | str) -> Batch:
    """The same batch on `device`. Copies to a GPU are asynchronous (safe: later GPU work is
    queued behind them); copies back to the CPU are not, so the values are ready when read."""
    non_blocking = torch.device(device).type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}
