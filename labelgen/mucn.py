"""MUCN: the Meta Uni-label Correction Network of one modality.

MUCN(x, y~) reads a representation x of the modality and a (noisy) label y~ and returns a
corrected label in [-H, H]. Residual output (default) is y~ + delta(x, y~) clipped to
[-H, H], with delta's last layer initialised to zero so training starts from the identity
(the `copy` labels); plain output is H * tanh(g(x, y~)).
"""

from typing import Literal

import torch
from torch import nn


class MUCN(nn.Module):
    def __init__(self, *, in_dim: int, hidden: int, label_embed_dim: int, bound: float,
                 output: Literal["residual", "plain"] = "residual") -> None:
        super().__init__()
        assert in_dim > 0 and hidden > 0 and label_embed_dim > 0, "sizes must be positive"
        assert bound > 0, "the label bound H must be positive"
        assert output in ("residual", "plain"), f"unknown MUCN output {output!r}"
        self.bound = float(bound)
        self.output = output
        self.label_embed = nn.Sequential(nn.Linear(1, label_embed_dim), nn.Tanh())
        self.mlp = nn.Sequential(
            nn.Linear(in_dim + label_embed_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        if output == "residual":
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x: (B, in_dim), y: (B,) labels on the scale [-H, H] (noisy ones may exceed it)
        e = self.label_embed((y / self.bound).unsqueeze(-1))  # (B, E)
        out = self.mlp(torch.cat([x, e], dim=-1)).squeeze(-1)  # (B,)
        if self.output == "plain":
            return self.bound * torch.tanh(out)
        return torch.clamp(y + out, -self.bound, self.bound)
