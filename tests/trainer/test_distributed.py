"""`trainer run` under torchrun: 2 CPU processes (gloo) against 1 process, same global batch.

Both runs see the same seeded clip order; each of the 2 ranks takes half of every global
batch of 16, and DDP averages their gradients, so the steps are those of 1 process at
batch 16 up to float summation order. With no dropout the runs must agree within TOL.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.conftest import DATASET, TINY

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-4  # absolute, on losses, MAE and Corr after 3 epochs


def test_two_processes_match_one(store_dir: Path, tmp_path: Path) -> None:
    args = ["run", "--store", str(store_dir), "--dataset", DATASET, *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    outs = {}
    for n in (1, 2):
        outs[n] = tmp_path / f"np{n}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={n}", "-m", "trainer.cli", *args, "--out", str(outs[n])]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (json.loads((outs[n] / "metrics.json").read_text()) for n in (1, 2))
    assert one["world_size"] == 1 and two["world_size"] == 2
    # only rank 0 wrote: one set of files, no per-rank leftovers
    assert sorted(p.name for p in outs[2].iterdir()) == sorted(p.name for p in outs[1].iterdir())
    for a, b in zip(one["histories"]["1"], two["histories"]["1"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=TOL)
        assert b["valid_MAE"] == pytest.approx(a["valid_MAE"], abs=TOL)
    for name in ("MAE", "Corr"):
        assert two["test"]["mean"][name] == pytest.approx(one["test"]["mean"][name], abs=TOL)
    assert two["per_seed"][0]["best_epoch"] == one["per_seed"][0]["best_epoch"]
