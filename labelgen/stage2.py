"""Stage 2: meta-learning one MUCN per modality on the cached stage-1 representations.

Per batch and modality (DESIGN.md section 3):
- meta-train (unimodal denoising): y~ = y_M + eps, eps ~ N(0, sigma_u^2);
  L_ud(phi) = |MUCN(h_u, y~) - y_M|; inner step phi' = phi - alpha * grad L_ud(phi).
- meta-test (multimodal denoising): L_md(phi) = |MUCN(z_u, y_M + eps') - y_M| on the same
  batch with the projected multimodal representations.
- skip rule: if L_md(phi') < L_md(phi) (same batch, same noise), accept phi <- phi'.
  Otherwise phi <- phi - mu * grad_phi L_md(phi - alpha * grad L_ud(phi)), differentiating
  through the inner step (second order) or treating its gradient as a constant (first order).
Without the multimodal denoising task (ablation) every step is the plain inner step.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from labelgen.config import Stage2Config
from labelgen.mucn import MUCN
from labelgen.representations import CachedReps
from mugcore.data.schema import MODALITIES, SPLITS

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params], torch.Tensor]


def l1_loss(model: nn.Module, params: Params, x: torch.Tensor, y_in: torch.Tensor,
            target: torch.Tensor) -> torch.Tensor:
    """mean |model_params(x, y_in) - target| with the parameters given explicitly."""
    return (functional_call(model, params, (x, y_in)) - target).abs().mean()


def inner_step(params: Params, inner_loss: LossFn, *, alpha: float,
               second_order: bool) -> Params:
    """phi' = phi - alpha * grad L(phi); phi' keeps its graph back to phi when second order."""
    names = list(params)
    grads = torch.autograd.grad(inner_loss(params), [params[n] for n in names],
                                create_graph=second_order)
    if not second_order:
        grads = tuple(g.detach() for g in grads)
    return {n: params[n] - alpha * g for n, g in zip(names, grads, strict=True)}


def meta_gradient(params: Params, inner_loss: LossFn, outer_loss: LossFn, *, alpha: float,
                  second_order: bool) -> tuple[dict[str, torch.Tensor], Params, torch.Tensor]:
    """grad_phi L_outer(phi - alpha * grad L_inner(phi)), phi' and L_outer(phi')."""
    fast = inner_step(params, inner_loss, alpha=alpha, second_order=second_order)
    loss = outer_loss(fast)
    names = list(params)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return dict(zip(names, grads, strict=True)), fast, loss


@dataclass
class StepOutcome:
    inner_loss: float
    skipped: bool


def meta_step(model: MUCN, h: torch.Tensor, z: torch.Tensor, y: torch.Tensor, *,
              sigma: float, sigma_test: float, config: Stage2Config,
              generator: torch.Generator) -> StepOutcome:
    """One stage-2 update of `model` in place on a batch (h, z: (B, d_u), y: (B,))."""
    params = dict(model.named_parameters())
    y_noisy = y + sigma * torch.randn(y.shape, generator=generator)  # (B,)

    def unimodal_denoising(p: Params) -> torch.Tensor:
        return l1_loss(model, p, h, y_noisy, y)

    if not config.multimodal_denoising:
        fast = inner_step(params, unimodal_denoising, alpha=config.inner_lr, second_order=False)
        _assign(params, fast)
        return StepOutcome(inner_loss=float(unimodal_denoising(fast).detach()), skipped=True)

    y_noisy_test = y + sigma_test * torch.randn(y.shape, generator=generator)  # (B,)

    def multimodal_denoising(p: Params) -> torch.Tensor:
        return l1_loss(model, p, z, y_noisy_test, y)

    with torch.no_grad():
        before = float(multimodal_denoising(params))
    grads, fast, after = meta_gradient(params, unimodal_denoising, multimodal_denoising,
                                       alpha=config.inner_lr, second_order=config.second_order)
    if config.skip_rule and float(after.detach()) < before:
        _assign(params, fast)
        return StepOutcome(inner_loss=float(after.detach()), skipped=True)
    with torch.no_grad():
        for name, param in params.items():
            param -= config.meta_lr * grads[name]
    return StepOutcome(inner_loss=float(after.detach()), skipped=False)


def _assign(params: Params, values: Params) -> None:
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(values[name])


@dataclass
class Stage2Result:
    labels: dict[str, dict[str, np.ndarray]]  # modality -> split -> (N,) uni-labels
    info: dict[str, dict[str, float]]  # modality -> {skip_fraction, final_meta_loss, seconds}


def run_stage2(reps: CachedReps, config: Stage2Config, *, seed: int,
               on_progress: Callable[[float], None] | None = None) -> Stage2Result:
    """Meta-learn a MUCN per modality on `reps` and emit uni-labels for every split."""
    threads = torch.get_num_threads()
    # MUCN's matrices are tiny: a second thread only adds synchronisation, and on a busy
    # machine its spin-waits made stage 2 about 20 times slower.
    torch.set_num_threads(1)
    try:
        return _run_stage2(reps, config, seed=seed, on_progress=on_progress)
    finally:
        torch.set_num_threads(threads)


def _run_stage2(reps: CachedReps, config: Stage2Config, *, seed: int,
                on_progress: Callable[[float], None] | None) -> Stage2Result:
    bound = reps.bound
    n_train = len(reps.splits["train"].y)
    n_batches = -(-n_train // config.batch_size)
    total_steps = len(MODALITIES) * config.epochs * n_batches
    done = 0
    labels: dict[str, dict[str, np.ndarray]] = {}
    info: dict[str, dict[str, float]] = {}
    for m_index, modality in enumerate(MODALITIES):
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1000 + m_index)
        scale = _Standardiser(reps.splits["train"].h[modality], enabled=config.normalise_reps)
        train = reps.splits["train"]
        h = scale(train.h[modality])  # (N, d_u)
        z = scale(train.z[modality])  # (N, d_u)
        y = torch.as_tensor(train.y, dtype=torch.float32)  # (N,)
        with torch.random.fork_rng():
            torch.manual_seed(seed * 1000 + m_index)  # MUCN initialisation
            model = MUCN(in_dim=h.shape[1], hidden=config.hidden,
                         label_embed_dim=config.label_embed_dim, bound=bound,
                         output=config.output)
        sigma = config.noise(modality) * bound
        sigma_test = (config.meta_test_noise * bound if config.meta_test_noise is not None
                      else sigma)
        skipped = steps = 0
        last_loss = float("nan")
        model.train()
        for _epoch in range(config.epochs):
            order = torch.randperm(n_train, generator=generator)
            for start in range(0, n_train, config.batch_size):
                idx = order[start:start + config.batch_size]
                outcome = meta_step(model, h[idx], z[idx], y[idx], sigma=sigma,
                                    sigma_test=sigma_test, config=config, generator=generator)
                skipped += outcome.skipped
                steps += 1
                last_loss = outcome.inner_loss
                done += 1
                if on_progress is not None:
                    on_progress(done / total_steps)
        model.eval()
        with torch.no_grad():
            labels[modality] = {
                split: model(scale(reps.splits[split].h[modality]),
                             torch.as_tensor(reps.splits[split].y, dtype=torch.float32)).numpy()
                for split in SPLITS
            }
        info[modality] = {"skip_fraction": skipped / max(steps, 1), "final_loss": last_loss,
                          "seconds": time.perf_counter() - started}
    return Stage2Result(labels=labels, info=info)


class _Standardiser:
    """Train-split mean/std scaling of a modality's representations, or the identity."""

    def __init__(self, train_h: np.ndarray, *, enabled: bool) -> None:
        self.mean = train_h.mean(axis=0) if enabled else 0.0
        self.std = train_h.std(axis=0) + 1e-6 if enabled else 1.0

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)
