"""Stage 1's speed hooks: a frozen BERT's states computed once per split, and length-bucketed
training batches, on the tiny synthetic MOSI-like set (all-MiniLM-L6-v2, 6 layers)."""

import numpy as np
from torch import nn
from transformers import BertModel

from labelgen.config import load_config
from labelgen.stages.stage1 import run_stage1
from mugcore.data.schema import SPLITS, MMSADataset


def test_frozen_bert_runs_once_per_split_and_bucketing_trains(
        tiny_mosi: MMSADataset, tiny_overrides: list[str]) -> None:
    config = load_config(preset="mosi", overrides=[
        *tiny_overrides, "stage1.net.finetune_bert=false", "stage1.bucket_by_length=true",
        "stage1.patience=2"])
    calls: list[int] = []
    hook = nn.modules.module.register_module_forward_hook(
        lambda module, *_: calls.append(1) if isinstance(module, BertModel) else None)
    try:
        reps = run_stage1(tiny_mosi, config.stage1, seed=0)
    finally:
        hook.remove()
    # 48 / 16 / 16 clips: one state batch per split, whatever the epochs and evaluations.
    assert len(calls) == 3
    assert reps.info["runs"][0]["epochs"] == 2
    for split in SPLITS:
        h = reps.splits[split].h["text"]
        assert h.shape[0] == tiny_mosi.size(split) and np.isfinite(h).all()
