"""A label store holding the tiny synthetic MOSI-like set and its `copy` uni-labels."""

from pathlib import Path

import numpy as np
import pytest

from labelgen.methods import all_clips
from labelgen.methods.copy import generate as copy_labels
from mugcore.data.schema import MMSADataset
from storage import LabelStore

DATASET = "tiny-mosi"
# Small and deterministic (no dropout): seconds per run, and runs that must agree do.
TINY = ["--config", "fast", "--no-progress", "--seeds", "1", "--threads", "1",
        "--set", "epochs=3", "--set", "batch_size=16", "--set", "patience=0",
        "--set", "net.dropout=0", "--set", "net.text_hidden=16", "--set", "net.text_dim=8",
        "--set", "net.audio_hidden=8", "--set", "net.vision_hidden=8",
        "--set", "net.audio_dim=8", "--set", "net.vision_dim=8",
        "--set", "net.fusion_dim=16", "--set", "net.fusion_hidden=16",
        "--set", "net.predictor_hidden=8"]


def publish_copy(store: LabelStore, ds: MMSADataset) -> int:
    ids, splits = all_clips(ds)
    y = np.concatenate([np.asarray(ds.splits[s]["regression_labels"]) for s in
                        ("train", "valid", "test")])
    labels = {"clip_id": ids, "split": splits, "multimodal": y, **copy_labels(ds)}
    return store.publish_label_set(DATASET, labels, method="copy", options={}, seed=0).id


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory, tiny_mosi: MMSADataset) -> Path:
    path = tmp_path_factory.mktemp("trainer") / "store"
    with LabelStore.open(path) as store:
        store.register_dataset(DATASET, tiny_mosi, source_format="hdf5")
        publish_copy(store, tiny_mosi)
    return path
