"""Fusion network: concatenate the unimodal representations, then an MLP."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class FusionNetwork(nn.Module):
    """[h_t; h_a; h_v] (B, sum(in_dims)) -> MLP -> h_M (B, out_dim)."""

    def __init__(
        self, *, in_dims: Sequence[int], hidden: int, out_dim: int, dropout: float
    ) -> None:
        super().__init__()
        assert len(in_dims) >= 1 and all(d > 0 for d in in_dims), "in_dims must be positive"
        assert hidden > 0 and out_dim > 0, "dimensions must be positive"
        assert 0.0 <= dropout < 1.0, "dropout must be in [0, 1)"
        self.in_dims = tuple(in_dims)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(sum(self.in_dims), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, hs: Sequence[Tensor]) -> Tensor:
        assert [h.shape[-1] for h in hs] == list(self.in_dims), (
            f"expected inputs of widths {self.in_dims}, got {[h.shape[-1] for h in hs]}"
        )
        return self.mlp(torch.cat(list(hs), dim=-1))  # (B, sum(in_dims)) -> (B, out_dim)
