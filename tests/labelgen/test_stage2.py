"""Stage 2 on random tensors: MUCN bounds, the meta-gradient, the skip rule."""

import numpy as np
import pytest
import torch
from torch import nn

from labelgen.config import Stage2Config
from labelgen.stages.mucn import MUCN
from labelgen.stages.representations import CachedReps, SplitReps
from labelgen.stages.stage2 import l1_loss, meta_gradient, meta_step, run_stage2
from mugcore.data.schema import MODALITIES, SPLITS


class Bilinear(nn.Module):
    """f(x, y) = a * b * x[:, 0]: the inner step moves a and b, so a' depends on b."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a * self.b * x[:, 0]


def test_second_order_meta_gradient_matches_closed_form() -> None:
    model = Bilinear(1.0, 2.0)
    params = dict(model.named_parameters())
    x1, t1 = torch.tensor([[1.0]]), torch.tensor([0.0])  # inner: |a b - 0|, sign +1
    x2, t2 = torch.tensor([[1.0]]), torch.tensor([5.0])  # outer: |a' b' - 5|, sign -1
    alpha = 0.1

    def inner(p: dict) -> torch.Tensor:
        return l1_loss(model, p, x1, t1, t1)

    def outer(p: dict) -> torch.Tensor:
        return l1_loss(model, p, x2, t2, t2)

    # a' = a - alpha b = 0.8, b' = b - alpha a = 1.9, outer sign -1, so
    # dL/da = -(b' + a' db'/da) = -(1.9 + 0.8 * -0.1) = -1.82
    # dL/db = -(a' + b' da'/db) = -(0.8 + 1.9 * -0.1) = -0.61
    grads, fast, loss = meta_gradient(params, inner, outer, alpha=alpha, second_order=True)
    assert float(fast["a"].detach()) == pytest.approx(0.8)
    assert float(fast["b"].detach()) == pytest.approx(1.9)
    assert float(loss.detach()) == pytest.approx(5 - 0.8 * 1.9)
    assert float(grads["a"]) == pytest.approx(-1.82)
    assert float(grads["b"]) == pytest.approx(-0.61)

    # first order drops the inner step's Jacobian: -(b'), -(a')
    grads1, _, _ = meta_gradient(params, inner, outer, alpha=alpha, second_order=False)
    assert float(grads1["a"]) == pytest.approx(-1.9)
    assert float(grads1["b"]) == pytest.approx(-0.8)


@pytest.mark.parametrize("output", ["residual", "plain"])
def test_mucn_outputs_are_finite_and_bounded(output: str) -> None:
    torch.manual_seed(0)
    bound = 3.0
    model = MUCN(in_dim=8, hidden=16, label_embed_dim=4, bound=bound, output=output)
    with torch.no_grad():  # push the output far from zero so the bound has to act
        for p in model.parameters():
            p.normal_(0, 3.0)
    x = torch.randn(256, 8) * 100
    y = torch.linspace(-10, 10, 256)  # noisy labels may lie well outside [-H, H]
    out = model(x, y)
    assert out.shape == (256,)
    assert torch.isfinite(out).all()
    assert out.abs().max() <= bound
    assert out.abs().max() > 0.9 * bound  # the bound is reached, not avoided by luck


def test_residual_mucn_starts_as_clipped_identity() -> None:
    model = MUCN(in_dim=4, hidden=8, label_embed_dim=4, bound=1.0)
    y = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5])
    assert torch.equal(model(torch.randn(5, 4), y), y.clamp(-1, 1))


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(32, 6, generator=g)
    y = torch.tanh(h[:, 0]) * 2.5  # a label the representation explains
    return h, y


def _plain_mucn() -> MUCN:
    torch.manual_seed(1)
    return MUCN(in_dim=6, hidden=16, label_embed_dim=4, bound=3.0, output="plain")


def _losses(model: MUCN, z: torch.Tensor, y: torch.Tensor, alpha: float, h: torch.Tensor):
    params = {n: p.detach().clone().requires_grad_() for n, p in model.named_parameters()}
    grads, fast, after = meta_gradient(
        params, lambda p: l1_loss(model, p, h, y, y), lambda p: l1_loss(model, p, z, y, y),
        alpha=alpha, second_order=True)
    before = float(l1_loss(model, params, z, y, y).detach())
    return before, float(after.detach()), {n: v.detach() for n, v in fast.items()}, grads


def test_skip_rule_taken_accepts_the_inner_step() -> None:
    h, y = _batch()
    model = _plain_mucn()
    config = Stage2Config(inner_lr=0.01, meta_lr=0.5, meta_test_noise=0.0)
    before, after, fast, _ = _losses(model, h, y, config.inner_lr, h)
    assert after < before  # z = h, small step: meta-training also helps meta-testing
    outcome = meta_step(model, h, h, y, sigma=0.0, sigma_test=0.0, config=config,
                        generator=torch.Generator().manual_seed(0))
    assert outcome.skipped
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), fast[name])


def test_skip_rule_not_taken_makes_the_bilevel_update() -> None:
    h, y = _batch()
    z = -h  # the projected representation disagrees with the unimodal one
    model = _plain_mucn()
    config = Stage2Config(inner_lr=5.0, meta_lr=0.01, meta_test_noise=0.0)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    before, after, _, grads = _losses(model, z, y, config.inner_lr, h)
    assert after >= before  # a huge inner step on h overshoots on z
    outcome = meta_step(model, h, z, y, sigma=0.0, sigma_test=0.0, config=config,
                        generator=torch.Generator().manual_seed(0))
    assert not outcome.skipped
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), start[name] - config.meta_lr * grads[name])


def test_without_skip_rule_always_bilevel() -> None:
    h, y = _batch()
    model = _plain_mucn()
    config = Stage2Config(inner_lr=0.01, meta_lr=0.5, skip_rule=False)
    outcome = meta_step(model, h, h, y, sigma=0.0, sigma_test=0.0, config=config,
                        generator=torch.Generator().manual_seed(0))
    assert not outcome.skipped


def _random_reps(n: int = 40, bound: float = 3.0) -> CachedReps:
    rng = np.random.default_rng(0)

    def split(n: int) -> SplitReps:
        y = rng.uniform(-bound, bound, n).astype(np.float32)
        h = {m: rng.normal(size=(n, 5)).astype(np.float32) for m in MODALITIES}
        return SplitReps(h=h, z={m: v + 0.1 for m, v in h.items()},
                         h_m=rng.normal(size=(n, 7)).astype(np.float32),
                         pred={m: y.copy() for m in MODALITIES}, pred_m=y.copy(), y=y)

    return CachedReps(splits={s: split(n) for s in SPLITS}, bound=bound)


@pytest.mark.parametrize("overrides", [
    {}, {"second_order": False}, {"output": "plain"}, {"multimodal_denoising": False},
    {"normalise_reps": True}, {"skip_rule": False},
])
def test_run_stage2_labels_are_finite_bounded_and_deterministic(overrides: dict) -> None:
    reps = _random_reps()
    config = Stage2Config(epochs=3, batch_size=16, hidden=8, **overrides)
    fractions: list[float] = []
    first = run_stage2(reps, config, seed=3, on_progress=fractions.append)
    again = run_stage2(reps, config, seed=3)
    for m in MODALITIES:
        for s in SPLITS:
            labels = first.of(m)[s]
            assert labels.shape == (40,) and np.isfinite(labels).all()
            assert np.abs(labels).max() <= 3.0
            np.testing.assert_array_equal(labels, again.of(m)[s])
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    if not overrides.get("multimodal_denoising", True):
        assert all(info["skip_fraction"] == 1.0 for info in first.info.values())


def _members_of(group: MUCN) -> list[MUCN]:
    """Single MUCNs holding each group member's parameters (padding rows dropped)."""
    members = []
    for g, d in enumerate(group.in_dims):
        single = MUCN(in_dim=d, hidden=group.mlp[2].weight.shape[1],
                      label_embed_dim=group.label_embed[0].weight.shape[2], bound=group.bound,
                      output=group.output)
        with torch.no_grad():
            for name, p in single.named_parameters():
                value = group.get_parameter(name)[g]
                if name == "mlp.0.weight":  # own features, then the label embedding
                    value = torch.cat([value[:d], value[group.in_dim:]])
                p.copy_(value)
        members.append(single)
    return members


def test_group_is_its_members_with_padding_held_at_zero() -> None:
    torch.manual_seed(0)
    dims = [6, 3, 4]
    group = MUCN(in_dim=dims, hidden=16, label_embed_dim=4, bound=3.0, output="plain")
    assert group.mlp[0].weight.shape == (3, 6 + 4, 16)
    # the padding rows of the 3-wide member
    assert torch.count_nonzero(group.mlp[0].weight[1, 3:6]) == 0
    xs = [torch.randn(32, d) for d in dims]
    y = torch.tanh(torch.stack([x[:, 0] for x in xs])) * 2.5  # (3, 32)
    h = torch.stack([group.pad(x) for x in xs])  # (3, 32, 6)
    z = torch.stack([group.pad(-x if g == 1 else x) for g, x in enumerate(xs)])
    members = _members_of(group)
    out = group(h, y)
    for g, single in enumerate(members):
        torch.testing.assert_close(out[g], single(xs[g], y[g]))

    # one grouped step = each member's own step, skip rule decided per member: member 1's
    # projected representation disagrees with its unimodal one, so a large step overshoots
    config = Stage2Config(inner_lr=2.0, meta_lr=0.01, meta_test_noise=0.0)
    outcome = meta_step(group, h, z, y, sigma=0.0, sigma_test=0.0, config=config,
                        generator=torch.Generator().manual_seed(0))
    decisions = []
    for g, single in enumerate(members):
        zg = -xs[g] if g == 1 else xs[g]
        own = meta_step(single, xs[g], zg, y[g], sigma=0.0, sigma_test=0.0, config=config,
                        generator=torch.Generator().manual_seed(0))
        decisions.append(bool(own.skipped))
        for name, p in _members_of(group)[g].named_parameters():
            torch.testing.assert_close(p, dict(single.named_parameters())[name])
    assert outcome.skipped.tolist() == decisions
    assert len(set(decisions)) == 2  # both branches of the skip rule were exercised
    assert torch.count_nonzero(group.mlp[0].weight[1, 3:6]) == 0
