"""MLC on small random cached representations: bounds, determinism, and the meta-gradient."""

import numpy as np
import pytest
import torch

from labelgen.methods.mlc import MlcConfig, generate, meta_loss
from labelgen.stages.mucn import MUCN
from labelgen.stages.representations import CachedReps, SplitReps
from mugcore.data.schema import MODALITIES, SPLITS
from mugcore.errors import UserError
from mugcore.models.predictor import Predictor

SIZES = {"train": 40, "valid": 12, "test": 12}
SMALL = MlcConfig(epochs=3, batch_size=16, hidden=16, label_embed_dim=4)


def random_reps(bound: float, seed: int = 0) -> CachedReps:
    rng = np.random.default_rng(seed)
    splits = {}
    for split in SPLITS:
        n = SIZES[split]
        y = rng.uniform(-bound, bound, n).astype(np.float32)
        # Representations at a scale far from 1 carry the label in their first coordinate.
        h = {u: (rng.normal(size=(n, 6)) * 20 + y[:, None]).astype(np.float32) for u in MODALITIES}
        z = {u: (h[u] + rng.normal(size=(n, 6))).astype(np.float32) for u in MODALITIES}
        splits[split] = SplitReps(h=h, z=z, h_m=rng.normal(size=(n, 8)).astype(np.float32),
                                  pred={u: np.zeros(n, np.float32) for u in MODALITIES},
                                  pred_m=np.zeros(n, np.float32), y=y)
    return CachedReps(splits=splits, bound=bound)


@pytest.mark.parametrize("bound", [1.0, 3.0])
def test_labels_cover_every_split_finite_and_bounded(bound: float) -> None:
    reps = random_reps(bound)
    labels = generate(reps, bound=bound, config=SMALL, seed=0)
    assert set(labels) == set(MODALITIES)
    moved = 0.0
    for u in MODALITIES:
        for split in SPLITS:
            values = labels[u][split]
            assert values.shape == (SIZES[split],)
            assert np.isfinite(values).all()
            assert np.abs(values).max() <= bound
            moved += float(np.abs(values - reps.splits[split].y).mean())
    assert moved > 1e-4  # the LCN was trained: it no longer returns the multimodal label


def test_deterministic_given_the_seed() -> None:
    reps = random_reps(3.0)
    first = generate(reps, bound=3.0, config=SMALL, seed=7)
    again = generate(reps, bound=3.0, config=SMALL, seed=7)
    other = generate(reps, bound=3.0, config=SMALL, seed=8)
    for u in MODALITIES:
        np.testing.assert_array_equal(first[u]["train"], again[u]["train"])
    assert any(not np.array_equal(first[u]["train"], other[u]["train"]) for u in MODALITIES)


def test_meta_gradient_reaches_the_lcn_through_the_look_ahead() -> None:
    torch.manual_seed(0)
    h = torch.randn(16, 5, dtype=torch.float64)
    z = h + 0.1 * torch.randn(16, 5, dtype=torch.float64)
    y = torch.empty(16, dtype=torch.float64).uniform_(-2, 2)
    lcn = MUCN(in_dim=5, hidden=8, label_embed_dim=3, bound=3.0).double()
    predictor = Predictor(in_dim=5, hidden=8, dropout=0.0).double()
    names, params = zip(*lcn.named_parameters(), strict=True)
    grads = dict(zip(names, torch.autograd.grad(
        meta_loss(lcn, predictor, h, z, y, inner_lr=0.5), params), strict=True))
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0
    # The LCN's last bias shifts every corrected label: its analytic meta-gradient must match
    # a central finite difference of the meta loss.
    bias = lcn.mlp[-1].bias
    analytic = float(grads["mlp.4.bias"][0])
    bias.data += 1e-5
    up = meta_loss(lcn, predictor, h, z, y, inner_lr=0.5).item()
    bias.data -= 2e-5
    down = meta_loss(lcn, predictor, h, z, y, inner_lr=0.5).item()
    assert analytic != 0.0
    assert analytic == pytest.approx((up - down) / 2e-5, rel=1e-4)


def test_bad_option_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="mlc.inner_lr"):
        MlcConfig(inner_lr=0)
