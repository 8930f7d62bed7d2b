"""A label store holding a tiny SYNTHETIC SIMS-shaped dataset with two label sets (copy and
ground-truth, made by `labelgen run`), and helpers to build other generators' label files."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from labelgen.cli import main as labelgen
from mugcore.data.schema import MODALITIES, TRUTH_KEYS, MMSADataset
from storage import LabelStore

DATASET = "tiny-sims"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, tiny_sims_h5: Path) -> Path:
    store = tmp_path_factory.mktemp("interop-store") / "store"
    for method in ("copy", "ground-truth"):
        assert labelgen(["run", "--data", str(tiny_sims_h5), "--method", method, "--store",
                         str(store), "--dataset", DATASET]) == 0
    return store


def label_set_ids(store_dir: Path) -> dict[str, int]:
    with LabelStore.open(store_dir, create=False) as store:
        return {ls.method: ls.id for ls in store.list_label_sets(DATASET)}


def write_csv(path: Path, ids: list[str], values: dict[str, np.ndarray],
              header: str = "clip_id,text,audio,vision") -> Path:
    lines = [header] + [f"{c},{float(values['text'][i])!r},{float(values['audio'][i])!r},"
                        f"{float(values['vision'][i])!r}" for i, c in enumerate(ids)]
    path.write_text("\n".join(lines) + "\n")
    return path


def selfmm_file(path: Path, ds: MMSADataset, *, epochs: int = 3, cpu: bool = True,
                seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    """A pickle laid out as MMSA's Self-MM `save_labels` writes it (see
    labelgen/interop/label_files.py): arrays in the train split's pickle order, `ids` in a
    shuffled loader's order. `cpu`: every epoch holds the final labels (views of one live
    tensor, as MMSA's CPU runs save them); otherwise epoch 1 is the initial copy, as on a GPU.
    Returns the path and the final uni-labels in pickle order."""
    rng = np.random.default_rng(seed)
    train = ds.splits["train"]
    y_m = np.asarray(train["regression_labels"], dtype=np.float32).reshape(-1)
    final = {m: np.clip(y_m + rng.normal(0, 0.2, len(y_m)), -1, 1).astype(np.float32)
             for m in MODALITIES}
    ids = [str(c) for c in train["id"]]
    saved = {}
    for epoch in range(1, epochs + 1):
        labels = final if cpu or epoch == epochs else (
            {m: y_m.copy() for m in MODALITIES} if epoch == 1 else
            {m: (y_m + final[m]) / 2 for m in MODALITIES})
        shuffled = [ids[i] for i in rng.permutation(len(ids))]
        saved[epoch] = {"fusion": y_m.copy(), **{m: labels[m].copy() for m in MODALITIES},
                        "ids": shuffled}
    with open(path, "wb") as f:
        pickle.dump(saved, f, protocol=4)  # a test fixture we build: plain pickle is fine here
    return path, final


def truth_of(ds: MMSADataset, split: str) -> dict[str, np.ndarray]:
    return {m: np.asarray(ds.splits[split][TRUTH_KEYS[m]]) for m in MODALITIES}
