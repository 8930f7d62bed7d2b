"""Reading another generator's label file against a dataset of the store and publishing it:
one path for `labelgen import-labels` and the API's label-set upload."""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from labelgen.interop.label_files import LabelFile, read_cmc, read_csv, read_selfmm
from mugcore.errors import UserError

if TYPE_CHECKING:  # SQLAlchemy loads when a store is opened, not for `labelgen --help`
    from storage import LabelSetInfo
    from storage.store import LabelStore


def read_labels_for_import(path: Path, fmt: str, *, train_ids: list[str],
                           train_multimodal: np.ndarray, epoch: int | None,
                           shown: str | None = None) -> LabelFile:
    """One reader per format (shared by the CLI and the API's upload)."""
    if epoch is not None and fmt != "selfmm":
        raise UserError("--epoch: only the selfmm format has epochs")
    if fmt == "csv":
        return read_csv(path, shown=shown)
    if fmt == "cmc":
        return read_cmc(path)
    return read_selfmm(path, train_ids, train_multimodal, epoch=epoch, shown=shown)


def import_label_file(store: "LabelStore", dataset: str | int, path: Path, fmt: str, *,
                      epoch: int | None = None, shown: str | None = None
                      ) -> tuple["LabelSetInfo", LabelFile]:
    """Read a label file against `dataset` and publish it; (LabelSetInfo, what was read)."""
    from storage.imports import dataset_clips, publish_imported

    index = dataset_clips(store, dataset)
    train = index.split == "train"
    got = read_labels_for_import(path, fmt, train_ids=index.clip_id[train].tolist(),
                                 train_multimodal=index.multimodal[train], epoch=epoch,
                                 shown=shown)
    info = publish_imported(store, dataset, got.labels, source=got.source,
                            copy_splits=got.unlabelled_splits, notes=got.notes)
    return info, got
