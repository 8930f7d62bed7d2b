"""Stage-3 speed options: length-bucketed batches (also under DDP sharding), bf16 autocast,
pinned memory, and a frozen BERT whose states are computed once per split."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from transformers import BertModel

from tests.trainer.conftest import DATASET, TINY
from trainer.cli import main
from trainer.distributed import DistEnv, train_indices


def run(store: Path, out: Path, *extra: str) -> int:
    return main(["run", "--store", str(store), "--dataset", DATASET, *TINY, *extra,
                 "--out", str(out)])


def history(out: Path) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["histories"]["1"]


def _env(rank: int, world: int) -> DistEnv:
    return DistEnv(rank=rank, world_size=world, local_rank=rank, device=torch.device("cpu"))


def test_bucketed_global_batches_shard_like_plain_ones() -> None:
    n, batch = 100, 10
    lengths = torch.randint(1, 60, (n,), generator=torch.Generator().manual_seed(0))
    one = train_indices(_env(0, 1), n, seed=3, epoch=1, global_batch=batch, lengths=lengths)
    assert sorted(one.tolist()) == list(range(n))
    plain = train_indices(_env(0, 1), n, seed=3, epoch=1, global_batch=batch)
    spread = [np.ptp(lengths.numpy()[order[i:i + batch]]) for order in (one, plain)
              for i in range(0, n, batch)]
    assert np.mean(spread[:n // batch]) < 0.5 * np.mean(spread[n // batch:])
    ranks = [train_indices(_env(r, 2), n, seed=3, epoch=1, global_batch=batch, lengths=lengths)
             for r in (0, 1)]
    for k in range(n // batch):  # rank r's k-th local batch is its half of global batch k
        local = [set(r[k * batch // 2:(k + 1) * batch // 2].tolist()) for r in ranks]
        assert local[0] | local[1] == set(one[k * batch:(k + 1) * batch].tolist())


def test_speed_options_run_on_the_cpu(store_dir: Path, tmp_path: Path) -> None:
    assert run(store_dir, tmp_path / "plain") == 0
    assert run(store_dir, tmp_path / "pinned", "--set", "pin_memory=true") == 0
    assert history(tmp_path / "pinned") == history(tmp_path / "plain")  # a no-op on a CPU
    assert run(store_dir, tmp_path / "bucketed", "--set", "bucket_by_length=true") == 0
    bucketed = history(tmp_path / "bucketed")
    assert all(np.isfinite(e["train_loss"]) and np.isfinite(e["valid_MAE"]) for e in bucketed)
    assert bucketed != history(tmp_path / "plain")  # another batch order
    config = json.loads((tmp_path / "bucketed" / "metrics.json").read_text())["config"]
    assert config["bucket_by_length"] is True


def test_bf16_is_refused_on_the_cpu_before_any_work(store_dir: Path, tmp_path: Path,
                                                    capsys) -> None:
    # Whatever the CPU's oneDNN supports: the refusal does not depend on the CPU model.
    out = tmp_path / "bf16"
    assert run(store_dir, out, "--device", "cpu", "--set", "bf16_autocast=true") == 2
    err = capsys.readouterr().err
    # One readable line (other lines, e.g. the thread count, may come before it).
    assert [line for line in err.splitlines() if "error" in line] == [
        "trainer: error: bf16_autocast=true: not supported on the CPU (this run's device); "
        "drop it or run on a GPU (--device cuda)"] and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # no empty seed_1/ left behind


def test_speed_options_must_be_booleans(store_dir: Path, tmp_path: Path, capsys) -> None:
    assert run(store_dir, tmp_path / "x", "--set", "bf16_autocast=maybe") == 2
    assert "'bf16_autocast' = 'maybe': must be true or false" in capsys.readouterr().err


def test_frozen_bert_runs_once_per_split(store_dir: Path, tmp_path: Path) -> None:
    calls: list[str] = []

    def count(module: nn.Module, *_: object) -> None:
        if isinstance(module, BertModel):
            calls.append("bert")

    hook = nn.modules.module.register_module_forward_hook(count)
    try:
        assert run(store_dir, tmp_path / "frozen", "--config", "mosi", "--set", "epochs=2",
                   "--set", "net.finetune_bert=false", "--set", "patience=0") == 0
    finally:
        hook.remove()
    # 48 / 16 / 16 clips: one state batch per split, for 2 epochs of training, 2 validations
    # and the final valid and test evaluation.
    assert len(calls) == 3
    assert len(history(tmp_path / "frozen")) == 2


@pytest.mark.parametrize("name", ["bucket_by_length", "bf16_autocast", "pin_memory"])
def test_speed_options_default_off(name: str) -> None:
    from trainer.config import load_config

    assert getattr(load_config("mosi"), name) is False
