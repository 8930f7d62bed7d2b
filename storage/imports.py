"""Label sets that another generator made, published into the store like any other, and the
dataset facts that reading and comparing them needs (clips in order, per-modality truth)."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from mugcore.data.schema import MODALITIES
from mugcore.errors import UserError
from storage.label_sets import ClipIndex, clip_positions
from storage.models import Clip
from storage.records import LabelSetInfo
from storage.store import LabelStore

IMPORTED_PREFIX = "imported-"


def dataset_clips(store: LabelStore, dataset: str | int) -> ClipIndex:
    """The dataset's clips in position order (ids, splits, multimodal labels)."""
    return store._clip_index(store.get_dataset(dataset))


def dataset_truth(store: LabelStore, dataset: str | int) -> dict[str, np.ndarray] | None:
    """Per-modality truth in position order from the clip table (no feature file is read),
    or None when the dataset has none."""
    info = store.get_dataset(dataset)
    if not info.has_truth:
        return None
    with store._read() as s:
        rows = s.execute(select(Clip.truth_text, Clip.truth_audio, Clip.truth_vision)
                         .where(Clip.dataset_id == info.id).order_by(Clip.position)).all()
    columns = np.array(rows, dtype=np.float64).reshape(len(rows), 3)
    return {m: columns[:, i] for i, m in enumerate(MODALITIES)}


def publish_imported(store: LabelStore, dataset: str | int, labels: Mapping[str, Any], *,
                     source: Mapping[str, Any], copy_splits: Sequence[str] = (),
                     notes: Sequence[str] = ()) -> LabelSetInfo:
    """Publish labels from another generator (arrays `clip_id`, `text`, `audio`, `vision`) as
    a label set of method `imported-<source['format']>`.

    Every clip needs a label, except those of `copy_splits` (splits the source format never
    labels, e.g. Self-MM's valid and test), which get the multimodal label (copy) and are named
    in the provenance. The store's own checks apply: ids of the dataset, finite, in [-H, H]."""
    info = store.get_dataset(dataset)
    index = store._clip_index(info)
    order = clip_positions(np.asarray(labels["clip_id"]).astype(str), index, info)
    n = len(index.clip_id)
    covered = np.zeros(n, dtype=bool)
    covered[order] = True
    in_copy = np.isin(index.split, list(copy_splits))
    labelled_copy = covered & in_copy
    if labelled_copy.any():
        raise UserError(f"labels/clip_id: the source labels clips of split(s) "
                        f"{sorted(set(index.split[labelled_copy].tolist()))} it was not "
                        "expected to")
    missing = ~covered & ~in_copy
    if missing.any():
        raise UserError(f"labels/clip_id: {int(missing.sum())} of the dataset's {n} clips have "
                        f"no label, e.g. {index.clip_id[missing][:5].tolist()}; a label set "
                        "covers every clip")
    full: dict[str, Any] = {"clip_id": index.clip_id, "split": index.split,
                            "multimodal": index.multimodal.astype(np.float64)}
    for m in MODALITIES:
        values = np.asarray(labels[m])
        if values.dtype.kind not in "fiu":
            raise UserError(f"labels/{m}: expected numbers, got dtype {values.dtype}")
        placed = index.multimodal.astype(np.float64).copy()  # copy, where not labelled
        placed[order] = values.astype(np.float64)
        full[m] = placed
    fmt = str(source.get("format", "unknown"))
    provenance = {
        "method": f"{IMPORTED_PREFIX}{fmt}", "source": dict(source),
        "dataset_hash": info.content_hash,
        "copy_splits": list(copy_splits), "notes": list(notes),
        "uncertainty": {"method": "none",
                        "reason": f"imported from {fmt}: the source gives no uncertainty"},
    }
    options = {"format": fmt, **{k: source[k] for k in ("file", "epoch") if k in source}}
    return store.publish_label_set(dataset, full, method=f"{IMPORTED_PREFIX}{fmt}",
                                   options=options, seed=None, provenance=provenance)
