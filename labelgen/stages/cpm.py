"""CPM: the Contrastive-based Projection Module of stage 1.

One projector Phi_u per modality maps the fused representation h_M into modality u's space,
z_u = Phi_u(h_M). InfoNCE over the batch (cosine similarity, temperature tau, the same clip
as positive) pulls z_u toward sg(h_u): the unimodal side is stop-gradiented so only the
projection moves toward the unimodal distribution, never the other way round.
"""

import torch
import torch.nn.functional as F
from torch import nn


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between rows of `anchor` and rows of `positive` (row i pairs row i).

    The caller passes `positive` already detached when it is the stop-gradient side.
    """
    assert anchor.shape == positive.shape and anchor.dim() == 2, "need two (B, d) tensors"
    assert temperature > 0, "temperature must be positive"
    a = F.normalize(anchor, dim=-1)  # (B, d)
    p = F.normalize(positive, dim=-1)  # (B, d)
    logits = a @ p.T / temperature  # (B, B): clip i against every clip j
    target = torch.arange(len(a), device=a.device)  # (B,)
    # both directions: z_i picks h_i among the batch, and h_j picks z_j among the batch
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class Projector(nn.Module):
    def __init__(self, *, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        assert in_dim > 0 and hidden > 0 and out_dim > 0, "sizes must be positive"
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, h_m: torch.Tensor) -> torch.Tensor:
        return self.net(h_m)  # (B, d_M) -> (B, d_u)


class ContrastiveProjection(nn.Module):
    def __init__(self, *, fused_dim: int, unimodal_dims: dict[str, int], hidden: int,
                 temperature: float) -> None:
        super().__init__()
        assert unimodal_dims, "need at least one modality"
        assert temperature > 0, "temperature must be positive"
        self.temperature = temperature
        self.projectors = nn.ModuleDict({
            u: Projector(in_dim=fused_dim, hidden=hidden, out_dim=d)
            for u, d in unimodal_dims.items()
        })

    def forward(self, h_m: torch.Tensor) -> dict[str, torch.Tensor]:
        return {u: proj(h_m) for u, proj in self.projectors.items()}  # u -> (B, d_u)

    def contrastive_losses(self, z: dict[str, torch.Tensor],
                           h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """L_cl^u between z_u and sg(h_u) for every modality."""
        return {u: info_nce(z[u], h[u].detach(), self.temperature) for u in self.projectors}
