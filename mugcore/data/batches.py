"""Torch batching of one MMSADataset split.

A split's arrays become tensors once per loader; a batch is gathered by indexing those
tensors (no per-clip or per-step numpy work). Each batch is cut to its longest real
sequence before it is gathered: audio and vision to the longest clip's length, `text_bert`
(and `text`, which shares its token axis) to the last token any of its clips' attention
masks covers. The encoders read lengths and masks, so this changes speed only (tested).

`bucket_by_length` orders training batches so that clips of like length share a batch,
which cuts the padding that is left; batches stay shuffled among themselves (see
`length_buckets`).

`make_loader(device=...)` turns a split's arrays into tensors on the device once per
(dataset, split, device), kept until the dataset is garbage-collected, and gathers batches
there: a GPU run copies its data once, not once per batch, and stage 1's many loaders (one per
training, one per evaluation) share one conversion, on the CPU too.
"""

import weakref
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from mugcore.data.schema import LENGTH_KEYS, MODALITIES, MMSADataset
from mugcore.device import to_device
from mugcore.errors import DatasetError, UserError

Batch = dict[str, Tensor]
# Batches per pool that length_buckets sorts: large enough to find clips of like length,
# small enough that which clips meet in a batch still changes from epoch to epoch.
BUCKET_POOL = 50
_on_device: dict[tuple[int, str, str], tuple[dict[str, Tensor], dict[str, Tensor]]] = {}


def _float(a: ArrayLike) -> Tensor:
    # from_numpy shares memory when the array already is contiguous float32.
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def split_tensors(
    ds: MMSADataset, split: str, targets: Mapping[str, ArrayLike] | None = None,
    weights: Mapping[str, ArrayLike] | None = None,
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
    for name, prefix, per_clip in (("targets", "y", targets), ("weights", "w", weights)):
        for m, values in (per_clip or {}).items():
            if m not in MODALITIES:
                raise UserError(f"{name}: unknown modality {m!r} (expected one of "
                                f"{MODALITIES})")
            t = _float(values).reshape(-1)
            if t.shape[0] != n:
                raise UserError(f"{name}[{m!r}] has {t.shape[0]} values but split {split} "
                                f"has {n}")
            out[f"{prefix}_{m}"] = t
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


def text_extent(text_bert: Tensor) -> Tensor:
    """(N,) per clip: 1 + the last position its attention mask covers (at least 1)."""
    covered = text_bert[:, 1] > 0  # (N, Lt)
    positions = torch.arange(1, covered.shape[1] + 1)
    return (covered * positions).amax(dim=1).clamp(min=1)


def clip_lengths(ds: MMSADataset, split: str) -> Tensor:
    """(N,) what bucket_by_length sorts by: each clip's text extent, since BERT's cost grows
    with it (quadratically in attention) and a batch pads its text to the longest."""
    return text_extent(torch.as_tensor(np.asarray(ds.splits[split]["text_bert"])))


def length_buckets(order: Tensor, lengths: Tensor, batch_size: int,
                   generator: torch.Generator, pool: int = BUCKET_POOL) -> Tensor:
    """`order` (a shuffled permutation of clip positions) rearranged for batches of like
    length: cut into pools of `pool` batches, each pool sorted by `lengths[order]`, the
    result cut into batches of `batch_size`, and the full batches shuffled with `generator`.
    A short last batch stays last, so consecutive runs of `batch_size` are still batches
    (which DataLoader and the DDP sharding both rely on)."""
    chunks = []
    for start in range(0, len(order), pool * batch_size):
        part = order[start:start + pool * batch_size]
        chunks.append(part[torch.argsort(lengths[part], stable=True)])
    ordered = torch.cat(chunks) if chunks else order
    n_full = len(ordered) // batch_size
    full = ordered[:n_full * batch_size].view(n_full, batch_size)
    shuffled = full[torch.randperm(n_full, generator=generator)].reshape(-1)
    return torch.cat([shuffled, ordered[n_full * batch_size:]])


class _BucketedShuffle(Sampler[int]):
    """A fresh seeded shuffle each epoch, then length_buckets."""

    def __init__(self, lengths: Tensor, batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size = lengths, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(len(self.lengths), generator=self.generator)
        yield from length_buckets(order, self.lengths, self.batch_size, self.generator).tolist()

    def __len__(self) -> int:
        return len(self.lengths)


def _lengths(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """What cutting a batch reads, on the CPU: audio/vision lengths and the text extent."""
    return {**{k: tensors[k] for k in LENGTH_KEYS.values()},
            "text_extent": text_extent(tensors["text_bert"])}


def _cached_split(ds: MMSADataset, split: str,
                  device: torch.device) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(split_tensors on `device`, their CPU lengths), made once per (ds, split, device)."""
    key = (id(ds), split, str(device))
    if key not in _on_device:
        tensors = split_tensors(ds, split)
        # Dropped with the dataset, so a later object that reuses its id starts afresh.
        weakref.finalize(ds, _on_device.pop, key, None)
        _on_device[key] = ({k: t.to(device) for k, t in tensors.items()}, _lengths(tensors))
    tensors, lengths = _on_device[key]
    return dict(tensors), lengths


class _Gather:
    def __init__(self, tensors: dict[str, Tensor], lengths: dict[str, Tensor]) -> None:
        # tensors may live on a GPU; lengths (audio/vision lengths and the text extent) stay
        # on the CPU, so that cutting a batch to its longest clip needs no GPU sync
        self.tensors, self.lengths = tensors, lengths
        self.device = tensors["y"].device
        # `text` is cut with text_bert only where the two share the token axis (MMSA files).
        self.trim_text = tensors["text"].shape[1] == tensors["text_bert"].shape[2]

    def __call__(self, positions: list[int]) -> Batch:
        idx = torch.tensor(positions, dtype=torch.long)
        keep = {m: max(int(self.lengths[k][idx].max()), 1) for m, k in LENGTH_KEYS.items()}
        n_tokens = int(self.lengths["text_extent"][idx].max())
        idx = to_device(idx, self.device)
        if self.trim_text:
            keep["text"] = n_tokens
        batch = {}
        for key, t in self.tensors.items():
            if key == "text_bert":
                t = t[:, :, :n_tokens]  # (N, 3, Lt) -> (N, 3, n_tokens), a view
            elif key in keep:
                t = t[:, :keep[key]]  # (N, L, D) -> (N, longest, D), a view
            batch[key] = t[idx]  # copies only what the batch keeps
        return batch


def make_loader(
    ds: MMSADataset,
    split: str,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    targets: Mapping[str, ArrayLike] | None = None,
    weights: Mapping[str, ArrayLike] | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
    sampler: Sampler[int] | None = None,
    bucket_by_length: bool = False,
    text_states: Tensor | None = None,
    pin_memory: bool = False,
    device: torch.device | str | None = None,
) -> DataLoader:
    """Batches of one split: dicts with `index` (position in the split), `text`, `text_bert`
    (long), `audio`, `audio_lengths`, `vision`, `vision_lengths`, `y`, and `y_<modality>` for
    each entry of `targets` and `w_<modality>` for each entry of `weights` (arrays over the
    whole split: uni-labels and per-clip loss weights).

    `indices` restricts the loader to those clips (e.g. one fold). Shuffling is seeded: the
    same seed gives the same order, epoch after epoch of a fresh loader. `sampler` (e.g. a
    DistributedSampler over range(len(indices or split))) replaces the built-in order.
    `bucket_by_length` (with shuffle) puts clips of like text length in the same batch.
    `text_states` (N, d) over the split (a frozen BERT's cached states, see
    mugcore.models.text_states) adds `text_states` (B, d) to each batch. `pin_memory` puts
    batches in page-locked memory, for faster asynchronous copies to a GPU. `device`: batches
    come out on it, gathered from the split's arrays copied there once (module doc).
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if sampler is not None and shuffle:
        raise UserError("pass shuffle=False with a sampler: the sampler decides the order")
    if bucket_by_length and not shuffle:
        raise UserError("bucket_by_length orders shuffled batches: pass shuffle=True")
    if device is None:
        tensors = split_tensors(ds, split, targets, weights)
        lengths = _lengths(tensors)
    else:
        tensors, lengths = _cached_split(ds, split, torch.device(device))
        if targets or weights:  # per loader: they change between runs
            extra = split_tensors(ds, split, targets, weights)
            tensors.update({k: t.to(device) for k, t in extra.items() if k not in tensors})
    n = ds.size(split)
    if text_states is not None:
        if text_states.shape[0] != n:
            raise UserError(f"text_states has {text_states.shape[0]} rows but split {split} "
                            f"has {n} clips")
        tensors["text_states"] = text_states.to(tensors["y"].device)
    if indices is None:
        positions = torch.arange(n)
    else:
        positions = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= n):
            raise UserError(f"indices must lie in [0, {n}) for split {split}")
    if bucket_by_length:
        sampler = _BucketedShuffle(lengths["text_extent"][positions], batch_size, seed)
        shuffle = False
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        _Positions(positions),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=generator,
        collate_fn=_Gather(tensors, lengths),
        pin_memory=pin_memory,
    )


def move_batch(batch: Batch, device: torch.device | str) -> Batch:
    """The same batch on `device`. Copies to a GPU are asynchronous (safe: later GPU work is
    queued behind them); copies back to the CPU are not, so the values are ready when read."""
    non_blocking = torch.device(device).type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}
