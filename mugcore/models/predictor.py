"""Predictor: a small MLP from a representation to a sentiment score."""

from torch import Tensor, nn


class Predictor(nn.Module):
    """(B, in_dim) -> (B,) scalar prediction."""

    def __init__(self, *, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        assert in_dim > 0 and hidden > 0, "dimensions must be positive"
        assert 0.0 <= dropout < 1.0, "dropout must be in [0, 1)"
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x).squeeze(-1)  # (B, 1) -> (B,)
