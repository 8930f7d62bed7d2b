"""`mlc`: Meta Label Correction (Zheng, Awadallah, Dumais; AAAI 2021), adapted to uni-labels.

MLC trains a label correction network (LCN) g(x, y~) -> y and the main model f together:
the LCN's corrected labels are judged by how well f, after one look-ahead step on them,
fits clean labels on a clean (meta) set:

    f' = f - eta * grad_f L(f(x), g(x, y~))          (look-ahead, kept differentiable)
    g <- g - mu * grad_g L_meta(f'(x_meta), y_meta)   (meta update of the LCN)
    f <- f - eta * grad_f L(f(x), g(x, y~))           (main update on the corrected labels)

Here, per modality u (DESIGN.md section 3: "a one-step look-ahead on the unimodal predictor,
meta loss on the projected multimodal representations"), on the cached stage-1 train reps:

- LCN_u(h_u, y_M) -> y_u in [-H, H] is the same network as MUG's MUCN (`labelgen.stages.mucn`,
  residual output starting from the identity); what differs is only the training: no
  label noise, no skip rule, and the meta loss comes through a predictor's look-ahead.
- f_u: a fresh `Predictor` on h_u. Look-ahead f_u' = f_u - eta * grad MSE(f_u(h_u), y_u)
  (second order through `labelgen.stages.stage2.inner_step`); meta loss L1(f_u'(z_u), y_M), with z_u
  the projected multimodal representation (the CPM puts it in u's space, and y_M is its
  label); the LCN takes an Adam step on it; then f_u takes the plain SGD step of the
  look-ahead, on the updated LCN's labels (detached).
- f_u's loss is squared error, not the L1 used elsewhere: the gradient of L1 in the label is
  sign(f - y_u), whose derivative in y_u is zero, so no meta-gradient would reach the LCN.
  MLC itself uses a soft-label cross-entropy, which is smooth in the label for the same
  reason.

Uni-labels: y_u = LCN_u(h_u, y_M) for every clip of every split.

Device: where stage 1 ran (`reps.device`); each modality's representations go there once, and
the batch order comes from a seeded CPU generator, so a GPU run visits the same batches.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call

from labelgen.stages.mucn import MUCN
from labelgen.stages.representations import CachedReps
from labelgen.stages.stage2 import _Standardiser, inner_step
from mugcore.data.schema import MODALITIES, SPLITS
from mugcore.device import to_device
from mugcore.errors import UserError
from mugcore.models.predictor import Predictor


@dataclass
class MlcConfig:
    """Options of `mlc` (YAML section `mlc:`).

    epochs, batch_size: passes over the train split and clips per step.
    hidden: width of the LCN and of the predictor f_u.
    label_embed_dim: width of the LCN's label embedding.
    inner_lr: eta, the predictor's SGD step, used both for the look-ahead and for its update.
    meta_lr: mu, the LCN's Adam learning rate.
    normalise_reps: standardise h_u and z_u with the train split's h_u mean and std (keeps the
        predictor's plain SGD step stable whatever the scale of the representations).
    """

    epochs: int = 30
    batch_size: int = 64
    hidden: int = 64
    label_embed_dim: int = 16
    inner_lr: float = 0.05
    meta_lr: float = 1e-3
    normalise_reps: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "hidden", "label_embed_dim", "inner_lr", "meta_lr"):
            if not getattr(self, name) > 0:
                raise UserError(f"mlc.{name} must be > 0, got {getattr(self, name)}")


def meta_loss(lcn: MUCN, predictor: Predictor, h: torch.Tensor, z: torch.Tensor,
              y: torch.Tensor, *, inner_lr: float) -> torch.Tensor:
    """L1(f'(z), y_M) with f' the predictor after one look-ahead step on LCN(h, y_M).

    h, z: (B, d_u), y: (B,). The result depends on the LCN only through the look-ahead.
    """
    y_u = lcn(h, y)  # (B,)

    def fit_corrected(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return (functional_call(predictor, params, (h,)) - y_u).pow(2).mean()

    fast = inner_step(dict(predictor.named_parameters()), fit_corrected, alpha=inner_lr,
                      second_order=True)
    return (functional_call(predictor, fast, (z,)) - y).abs().mean()


def train_lcn(h: torch.Tensor, z: torch.Tensor, y: torch.Tensor, *, bound: float,
              config: MlcConfig, generator: torch.Generator) -> MUCN:
    """MLC on one modality's train reps (h, z: (N, d_u), y: (N,), all on one device);
    returns the trained LCN there. The networks are built on the CPU, then moved, so every
    device starts from the same weights."""
    lcn = MUCN(in_dim=h.shape[1], hidden=config.hidden, label_embed_dim=config.label_embed_dim,
               bound=bound).to(h.device)
    predictor = Predictor(in_dim=h.shape[1], hidden=config.hidden, dropout=0.0).to(h.device)
    lcn_opt = torch.optim.Adam(lcn.parameters(), lr=config.meta_lr)
    predictor_opt = torch.optim.SGD(predictor.parameters(), lr=config.inner_lr)
    n = len(y)
    for _epoch in range(config.epochs):
        order = to_device(torch.randperm(n, generator=generator), h.device)
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            hb, zb, yb = h[idx], z[idx], y[idx]
            lcn_opt.zero_grad()
            meta_loss(lcn, predictor, hb, zb, yb, inner_lr=config.inner_lr).backward(
                inputs=list(lcn.parameters()))
            lcn_opt.step()
            with torch.no_grad():
                y_u = lcn(hb, yb)  # (B,)
            predictor_opt.zero_grad()
            (predictor(hb) - y_u).pow(2).mean().backward()
            predictor_opt.step()
    return lcn


def generate(reps: CachedReps, *, bound: float, config: MlcConfig,
             seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Uni-labels for every split (modality -> split -> (N,)), deterministic given `seed`."""
    train = reps.splits["train"]
    device = torch.device(reps.device)
    y_train = torch.as_tensor(train.y, dtype=torch.float32, device=device)  # (N,)
    out: dict[str, dict[str, np.ndarray]] = {}
    for m_index, modality in enumerate(MODALITIES):
        scale = _Standardiser(train.h[modality], enabled=config.normalise_reps, device=device)
        generator = torch.Generator().manual_seed(seed * 1000 + m_index)
        with torch.random.fork_rng():
            torch.manual_seed(seed * 1000 + m_index)  # network initialisation
            lcn = train_lcn(scale(train.h[modality]), scale(train.z[modality]), y_train,
                            bound=bound, config=config, generator=generator)
        with torch.no_grad():
            out[modality] = {
                split: lcn(scale(reps.splits[split].h[modality]),
                           torch.as_tensor(reps.splits[split].y, dtype=torch.float32,
                                           device=device)).cpu().numpy()
                for split in SPLITS
            }
        for split, values in out[modality].items():
            if not np.isfinite(values).all():
                raise UserError(f"mlc: non-finite {modality} uni-labels in split '{split}'; "
                                "lower mlc.inner_lr or set mlc.normalise_reps: true")
    return out


Config = MlcConfig  # the name the method registry looks up
