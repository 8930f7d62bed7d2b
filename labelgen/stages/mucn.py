"""MUCN: the Meta Uni-label Correction Network of one modality, or a group of them.

MUCN(x, y~) reads a representation x of the modality and a (noisy) label y~ and returns a
corrected label in [-H, H]. Residual output (default) is y~ + delta(x, y~) clipped to
[-H, H], with delta's last layer initialised to zero so training starts from the identity
(the `copy` labels); plain output is H * tanh(g(x, y~)).

Stage 2 trains one MUCN per modality. They share no parameters, so `in_dim=[d_t, d_a, d_v]`
builds the G independent networks as one module whose weights carry a leading group axis,
and one batched matmul per layer evaluates all of them: a meta-learning step of this tiny
network is almost all Python and autograd overhead, which the group pays once, not G times.
Members read inputs of different widths zero-padded to the widest; their first-layer
weights for the padding are zero and stay zero (a zero input gets a zero gradient), so each
member is exactly the network of its own width.
"""

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn


class GroupLinear(nn.Module):
    """G independent Linear layers: (G, B, in) -> (G, B, out), nn.Linear's initialisation.

    Member g reads fan_ins[g] inputs zero-padded to the widest, then `extra` inputs; the
    weights of its padding are zero.
    """

    def __init__(self, *, fan_ins: list[int], extra: int = 0, out: int) -> None:
        super().__init__()
        width = max(fan_ins)
        self.weight = nn.Parameter(torch.zeros(len(fan_ins), width + extra, out))
        self.bias = nn.Parameter(torch.empty(len(fan_ins), 1, out))
        with torch.no_grad():
            for g, fan_in in enumerate(fan_ins):
                limit = 1 / math.sqrt(fan_in + extra)
                self.weight[g, :fan_in].uniform_(-limit, limit)
                self.weight[g, width:].uniform_(-limit, limit)
                self.bias[g].uniform_(-limit, limit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)  # (G, B, out)


class MUCN(nn.Module):
    def __init__(self, *, in_dim: int | Sequence[int], hidden: int, label_embed_dim: int,
                 bound: float, output: Literal["residual", "plain"] = "residual") -> None:
        super().__init__()
        self.grouped = not isinstance(in_dim, int)
        self.in_dims = list(in_dim) if self.grouped else [in_dim]
        assert self.in_dims and min(self.in_dims) > 0, "sizes must be positive"
        assert hidden > 0 and label_embed_dim > 0, "sizes must be positive"
        assert bound > 0, "the label bound H must be positive"
        assert output in ("residual", "plain"), f"unknown MUCN output {output!r}"
        self.bound = float(bound)
        self.output = output
        self.in_dim = max(self.in_dims)
        groups = len(self.in_dims)
        self.label_embed = nn.Sequential(
            GroupLinear(fan_ins=[1] * groups, out=label_embed_dim), nn.Tanh())
        self.mlp = nn.Sequential(
            GroupLinear(fan_ins=self.in_dims, extra=label_embed_dim, out=hidden),
            nn.ReLU(),
            GroupLinear(fan_ins=[hidden] * groups, out=hidden),
            nn.ReLU(),
            GroupLinear(fan_ins=[hidden] * groups, out=1),
        )
        if output == "residual":
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d_g) -> (..., in_dim): zero columns after a member's own features."""
        return nn.functional.pad(x, (0, self.in_dim - x.shape[-1]))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x: (B, in_dim), y: (B,) labels on the scale [-H, H] (noisy ones may exceed it);
        # a group takes x: (G, B, in_dim) padded and y: (G, B) and returns (G, B)
        if not self.grouped:
            return self._grouped(x.unsqueeze(0), y.unsqueeze(0)).squeeze(0)
        return self._grouped(x, y)

    def _grouped(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.label_embed((y / self.bound).unsqueeze(-1))  # (G, B, E)
        out = self.mlp(torch.cat([x, e], dim=-1)).squeeze(-1)  # (G, B)
        if self.output == "plain":
            return self.bound * torch.tanh(out)
        return torch.clamp(y + out, -self.bound, self.bound)
