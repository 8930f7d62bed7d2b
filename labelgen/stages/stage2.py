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
The MUCNs are trained as one group (`MUCN(in_dim=[...])`): every member sees the same batch,
and losses, gradients, skip decisions and updates stay per member. A member is a modality and
its label noise (`Member`); by default one per modality with the configured noise, and the
noise selection of labelgen/trust/selection.py asks for several noise levels per modality at once,
which costs little more than one, since a step of this tiny network is mostly overhead.

Device: stage 2 runs where stage 1 did (`reps.device`); the representations go there once.
Its random numbers (batch order, label noise) come from a seeded CPU generator and are moved
to the device, so a GPU run draws the same noise as a CPU run.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from labelgen.config import Stage2Config
from labelgen.stages.mucn import MUCN
from labelgen.stages.representations import CachedReps
from mugcore.data.schema import MODALITIES, SPLITS
from mugcore.device import to_device

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params], torch.Tensor]


def l1_loss(model: nn.Module, params: Params, x: torch.Tensor, y_in: torch.Tensor,
            target: torch.Tensor) -> torch.Tensor:
    """mean |model_params(x, y_in) - target| over the batch (last) axis, one per group."""
    return (functional_call(model, params, (x, y_in)) - target).abs().mean(-1)


def inner_step(params: Params, inner_loss: LossFn, *, alpha: float,
               second_order: bool) -> Params:
    """phi' = phi - alpha * grad L(phi); phi' keeps its graph back to phi when second order.

    A grouped loss (one value per member of a MUCN group) is summed: the members share no
    parameters, so each one's gradient is that of its own loss.
    """
    names = list(params)
    grads = torch.autograd.grad(inner_loss(params).sum(), [params[n] for n in names],
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
    grads = torch.autograd.grad(loss.sum(), [params[n] for n in names])
    return dict(zip(names, grads, strict=True)), fast, loss


@dataclass
class StepOutcome:
    inner_loss: torch.Tensor  # () or (G,): the loss after the step's inner update
    skipped: torch.Tensor  # bool, () or (G,): the skip rule accepted phi' (no bi-level update)


def meta_step(model: nn.Module, h: torch.Tensor, z: torch.Tensor, y: torch.Tensor, *,
              sigma: float | torch.Tensor, sigma_test: float | torch.Tensor,
              config: Stage2Config, generator: torch.Generator) -> StepOutcome:
    """One stage-2 update of `model` in place on a batch.

    A single MUCN takes h, z: (B, d_u), y: (B,); a group of G MUCNs takes h, z: (G, B, d),
    y: (G, B) and sigmas broadcastable to (G, B), and applies the skip rule per member.
    """
    params = dict(model.named_parameters())
    y_noisy = y + sigma * _randn_like(y, generator)

    def unimodal_denoising(p: Params) -> torch.Tensor:
        return l1_loss(model, p, h, y_noisy, y)

    if not config.multimodal_denoising:
        fast = inner_step(params, unimodal_denoising, alpha=config.inner_lr, second_order=False)
        _assign(params, fast)
        with torch.no_grad():
            loss = unimodal_denoising(fast)
        return StepOutcome(inner_loss=loss, skipped=torch.ones(loss.shape, dtype=torch.bool,
                                                               device=loss.device))

    y_noisy_test = y + sigma_test * _randn_like(y, generator)

    def multimodal_denoising(p: Params) -> torch.Tensor:
        return l1_loss(model, p, z, y_noisy_test, y)

    with torch.no_grad():
        before = multimodal_denoising(params)  # () or (G,)
    grads, fast, after = meta_gradient(params, unimodal_denoising, multimodal_denoising,
                                       alpha=config.inner_lr, second_order=config.second_order)
    after = after.detach()
    skip = (after < before if config.skip_rule
            else torch.zeros(after.shape, dtype=torch.bool, device=after.device))
    with torch.no_grad():
        for name, param in params.items():
            accept = skip.reshape(skip.shape + (1,) * (param.dim() - skip.dim()))
            param.copy_(torch.where(accept, fast[name], param - config.meta_lr * grads[name]))
    return StepOutcome(inner_loss=after, skipped=skip)


def _randn_like(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like y, drawn from the (CPU) generator, on y's device."""
    return to_device(torch.randn(y.shape, generator=generator), y.device)


def _assign(params: Params, values: Params) -> None:
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(values[name])


@dataclass(frozen=True)
class Member:
    """One MUCN of the group: a modality and its meta-train label noise (a fraction of H)."""

    modality: str
    noise: float


def default_members(config: Stage2Config) -> list[Member]:
    return [Member(m, config.noise(m)) for m in MODALITIES]


@dataclass
class TrainedMUCNs:
    """The trained group with what it needs to correct any labels of any split."""

    model: MUCN
    members: list[Member]
    reps: CachedReps
    scales: dict[str, "_Standardiser"]

    def inputs(self, split: str, kind: str = "h") -> torch.Tensor:
        """(G, N, d): each member's representations of `split` (kind "h" or "z")."""
        arrays = getattr(self.reps.splits[split], kind)
        padded = {m: self.model.pad(self.scales[m](arrays[m])) for m in MODALITIES}
        return torch.stack([padded[m.modality] for m in self.members])

    @property
    def device(self) -> torch.device:
        return self.model.mlp[0].weight.device

    @torch.no_grad()
    def correct_rows(self, modality: str, h: np.ndarray, labels_in: np.ndarray) -> np.ndarray:
        """(G, N) corrections of rows h: (N, d_u) of `modality` with input labels (N,), by
        every member (only those of `modality` mean anything)."""
        self.model.eval()
        x = self.model.pad(self.scales[modality](h))  # (N, in_dim)
        y = torch.as_tensor(labels_in, dtype=torch.float32, device=self.device)
        groups = len(self.members)
        return self.model(x.expand(groups, -1, -1), y.expand(groups, -1)).cpu().numpy()

    @torch.no_grad()
    def correct(self, split: str, labels_in: np.ndarray) -> np.ndarray:
        """(G, N) corrected labels of `split` given input labels (N,) or (G, N)."""
        self.model.eval()
        y = torch.as_tensor(labels_in, dtype=torch.float32, device=self.device)
        y = y.expand(len(self.members), -1) if y.dim() == 1 else y
        return self.model(self.inputs(split), y).cpu().numpy()


@dataclass
class Stage2Result:
    labels: dict[Member, dict[str, np.ndarray]]  # member -> split -> (N,) uni-labels
    # member -> {skip_fraction, final_loss}; seconds: the whole stage (members train together)
    info: dict[Member, dict[str, float]]
    seconds: float
    mucns: TrainedMUCNs

    def of(self, modality: str) -> dict[str, np.ndarray]:
        """The labels of the modality's only member."""
        (member,) = [m for m in self.labels if m.modality == modality]
        return self.labels[member]


def effective_epochs(config: Stage2Config, n_train: int) -> int:
    """`epochs`, or more where the train split is too small for `min_steps` meta-steps: on 240
    clips 40 epochs are 160 steps, too few for the MUCNs of small noises to leave the
    identity, and the selection then preferred the noisiest candidate."""
    batches = -(-n_train // config.batch_size)
    return max(config.epochs, -(-config.min_steps // batches))


def run_stage2(reps: CachedReps, config: Stage2Config, *, seed: int,
               members: Sequence[Member] | None = None,
               on_progress: Callable[[float], None] | None = None) -> Stage2Result:
    """Meta-learn one MUCN per member on `reps` and emit uni-labels for every split."""
    members = list(members) if members is not None else default_members(config)
    assert members and len(set(members)) == len(members), "members must be distinct"
    threads = torch.get_num_threads()
    # MUCN's matrices are tiny: a second thread only adds synchronisation, and on a busy
    # machine its spin-waits made stage 2 about 20 times slower.
    torch.set_num_threads(1)
    try:
        return _run_stage2(reps, config, members, seed=seed, on_progress=on_progress)
    finally:
        torch.set_num_threads(threads)


def _run_stage2(reps: CachedReps, config: Stage2Config, members: list[Member], *, seed: int,
                on_progress: Callable[[float], None] | None) -> Stage2Result:
    started = time.perf_counter()
    train = reps.splits["train"]
    n_train = len(train.y)
    groups = len(members)
    device = torch.device(reps.device)
    scales = {m: _Standardiser(train.h[m], enabled=config.normalise_reps, device=device)
              for m in MODALITIES}
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # MUCN initialisation, on the CPU whatever the device
        model = MUCN(in_dim=[train.h[m.modality].shape[1] for m in members],
                     hidden=config.hidden, label_embed_dim=config.label_embed_dim,
                     bound=reps.bound, output=config.output).to(device)

    mucns = TrainedMUCNs(model=model, members=members, reps=reps, scales=scales)
    h, z = mucns.inputs("train", "h"), mucns.inputs("train", "z")  # (G, N, d)
    y = torch.as_tensor(train.y, dtype=torch.float32, device=device).expand(groups, -1)
    sigma = torch.tensor([[m.noise * reps.bound] for m in members], device=device)  # (G, 1)
    sigma_test = (torch.full_like(sigma, config.meta_test_noise * reps.bound)
                  if config.meta_test_noise is not None else sigma)
    generator = torch.Generator().manual_seed(seed * 1000)
    epochs = effective_epochs(config, n_train)
    total_steps = epochs * -(-n_train // config.batch_size)
    skipped = torch.zeros(groups, device=device)
    last_loss = torch.full((groups,), float("nan"), device=device)
    done = 0
    averaged = _IterateAverage(model, start=epochs - round(config.average_last * epochs))
    model.train()
    for epoch in range(epochs):
        order = to_device(torch.randperm(n_train, generator=generator), device)
        for start in range(0, n_train, config.batch_size):
            idx = order[start:start + config.batch_size]
            outcome = meta_step(model, h[:, idx], z[:, idx], y[:, idx], sigma=sigma,
                                sigma_test=sigma_test, config=config, generator=generator)
            skipped += outcome.skipped
            last_loss = outcome.inner_loss
            done += 1
            if on_progress is not None:
                on_progress(done / total_steps)
        averaged.update(epoch)
    averaged.load()
    out = {split: mucns.correct(split, reps.splits[split].y) for split in SPLITS}  # (G, N)
    labels = {m: {split: out[split][g] for split in SPLITS} for g, m in enumerate(members)}
    skipped, last_loss = skipped.cpu(), last_loss.cpu()
    info = {m: {"skip_fraction": float(skipped[g]) / max(done, 1),
                "final_loss": float(last_loss[g])} for g, m in enumerate(members)}
    return Stage2Result(labels=labels, info=info, seconds=time.perf_counter() - started,
                        mucns=mucns)


class _IterateAverage:
    """The mean of the parameters after each epoch from `start` on (stochastic weight
    averaging). Plain SGD on an L1 loss keeps bouncing at a fixed step size, so the last
    iterate's labels jump between noise levels and seeds; the average settles them."""

    def __init__(self, model: nn.Module, *, start: int) -> None:
        self.model, self.start, self.count = model, start, 0
        self.sums = {n: torch.zeros_like(p) for n, p in model.named_parameters()}

    def update(self, epoch: int) -> None:
        if epoch < self.start:
            return
        self.count += 1
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                self.sums[name] += param

    def load(self) -> None:
        if not self.count:
            return
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                param.copy_(self.sums[name] / self.count)


class _Standardiser:
    """Train-split mean/std scaling of a modality's representations, or the identity; the
    scaled rows come out on `device` (computed in numpy first, as on the CPU)."""

    device: torch.device | str = "cpu"  # also what stage-2 results pickled before it had one get

    def __init__(self, train_h: np.ndarray, *, enabled: bool,
                 device: torch.device | str = "cpu") -> None:
        self.mean = train_h.mean(axis=0) if enabled else 0.0
        self.std = train_h.std(axis=0) + 1e-6 if enabled else 1.0
        self.device = device

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32,
                               device=self.device)
