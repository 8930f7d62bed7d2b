"""CPM: InfoNCE prefers the matching clip and never moves the unimodal side."""

import torch

from labelgen.stages.cpm import ContrastiveProjection, info_nce


def test_info_nce_lower_for_matching_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(16, 8, generator=g)
    matched = info_nce(h + 0.01 * torch.randn(16, 8, generator=g), h, temperature=0.2)
    shuffled = info_nce(h[torch.randperm(16, generator=g)], h, temperature=0.2)
    assert matched < 0.5 * shuffled


def test_contrastive_loss_moves_only_the_projection() -> None:
    torch.manual_seed(0)
    cpm = ContrastiveProjection(fused_dim=12, unimodal_dims={"text": 6, "audio": 4},
                                hidden=10, temperature=0.3)
    h_m = torch.randn(8, 12, requires_grad=True)
    h = {"text": torch.randn(8, 6, requires_grad=True), "audio": torch.randn(8, 4,
                                                                            requires_grad=True)}
    z = cpm(h_m)
    assert z["text"].shape == (8, 6) and z["audio"].shape == (8, 4)
    losses = cpm.contrastive_losses(z, h)
    sum(losses.values()).backward()
    assert h["text"].grad is None and h["audio"].grad is None  # sg(h_u)
    assert h_m.grad is not None and h_m.grad.abs().sum() > 0
    assert all(p.grad is not None for p in cpm.parameters())
