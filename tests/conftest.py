"""Fixtures shared by every test area: tiny synthetic datasets (clearly synthetic, known truth)."""

from pathlib import Path

import pytest
import torch

from mugcore.data.schema import MMSADataset
from mugcore.data.synth import make_synthetic

# Tests train tiny networks, for which a second thread costs more in synchronisation than it
# gives, and servers started by the tests run beside the test process on 2 cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_mosi() -> MMSADataset:
    return make_synthetic("mosi", n_train=48, n_valid=16, n_test=16, seed=0)


@pytest.fixture(scope="session")
def tiny_sims() -> MMSADataset:
    return make_synthetic("sims", n_train=48, n_valid=16, n_test=16, seed=0)


@pytest.fixture(scope="session")
def tiny_mosi_h5(tmp_path_factory: pytest.TempPathFactory, tiny_mosi: MMSADataset) -> Path:
    from mugcore.data.io import save_dataset

    path = tmp_path_factory.mktemp("data") / "tiny_mosi.h5"
    save_dataset(tiny_mosi, path)
    return path


@pytest.fixture(scope="session")
def tiny_sims_h5(tmp_path_factory: pytest.TempPathFactory, tiny_sims: MMSADataset) -> Path:
    from mugcore.data.io import save_dataset

    path = tmp_path_factory.mktemp("data") / "tiny_sims.h5"
    save_dataset(tiny_sims, path)
    return path


@pytest.fixture(scope="session")
def tiny_mosi_pkl(tmp_path_factory: pytest.TempPathFactory, tiny_mosi: MMSADataset) -> Path:
    from mugcore.data.io import save_dataset

    path = tmp_path_factory.mktemp("data") / "tiny_mosi.pkl"
    save_dataset(tiny_mosi, path)
    return path
