"""A frozen BERT's [CLS] states, computed once per dataset split and kept for the process.

With `finetune_bert=False` the text encoder's BERT never changes and runs without dropout, so
a clip's [CLS] state is the same at every step: it is computed once (batches cut to their
longest text, no gradients), the loader hands it out beside the other features
(`make_loader(text_states=...)`), and the network runs only the encoder's trainable
projection on it. The states are kept per (dataset object, split, checkpoint) until the
dataset is garbage-collected, so stage 1's cross-fitted models and per-epoch evaluations and
stage 3's seeds and evaluations share one computation.
"""

import weakref

import torch
from torch import Tensor

from mugcore.data.batches import make_loader
from mugcore.data.schema import MMSADataset
from mugcore.models.multimodal_net import MultimodalNet
from mugcore.models.text_encoder import BertTextEncoder

BATCH = 128
_cache: dict[tuple[int, str, str], Tensor] = {}


def frozen_text_states(net: MultimodalNet, ds: MMSADataset, split: str) -> Tensor | None:
    """(N, hidden) [CLS] states of the split's clips when `net`'s text encoder is a frozen
    BERT, on the CPU; None for any other text encoder (then BERT runs on each batch, as
    fine-tuning needs)."""
    encoder = net.encoders["text"]
    if not isinstance(encoder, BertTextEncoder) or encoder.finetune:
        return None
    key = (id(ds), split, str(encoder.checkpoint))
    if key not in _cache:
        # Dropped with the dataset, so a later object that reuses its id starts afresh.
        weakref.finalize(ds, _cache.pop, key, None)
        _cache[key] = _compute(encoder, ds, split)
    return _cache[key]


@torch.no_grad()
def _compute(encoder: BertTextEncoder, ds: MMSADataset, split: str) -> Tensor:
    device = encoder.proj.weight.device  # a frozen BERT is in eval mode: no dropout
    return torch.cat([encoder.cls_state(batch["text_bert"].to(device)).float().cpu()
                      for batch in make_loader(ds, split, batch_size=BATCH, shuffle=False)])
