"""The one call `labelgen run --store ... --dataset NAME` makes after generating labels."""

from collections.abc import Mapping
from typing import Any

from mugcore.data.schema import MMSADataset
from storage.records import LabelSetInfo
from storage.store import LabelStore


def publish_result(store: LabelStore, *, dataset_name: str, ds: MMSADataset,
                   labels: Mapping[str, Any], method: str, options: Mapping[str, Any],
                   seed: int | None, provenance: Mapping[str, Any] | None = None,
                   quality: Mapping[str, Any] | None = None,
                   source_format: str = "hdf5") -> LabelSetInfo:
    """Register `ds` as `dataset_name` (or reuse it when the store holds the same content; a
    Conflict when the name holds other content), then publish `labels` as a new label set."""
    dataset = store.register_dataset(dataset_name, ds, source_format=source_format)
    return store.publish_label_set(dataset.id, labels, method=method, options=options, seed=seed,
                                   provenance=provenance, quality=quality)
