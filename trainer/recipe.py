"""Stage 3 of MUG as a recipe: setup, train, evaluate, save, each one step.

Loss (DESIGN section 3): L = L1(P_M(h_M), y_M) + beta * sum_u L1(P_u(h_u), y_u), with the
uni-labels y_u of the chosen label set. beta = 0 is the "no unimodal task" ablation: the
unimodal heads are then left out of the graph, so that run is a plain multimodal network.
The checkpoint with the lowest validation MAE of the multimodal prediction is kept.

One recipe trains one seed. Resumable: `last.pt` (model, optimiser, epoch, history, RNG)
is written after every epoch; `best.pt` holds what `trainer eval` needs to rebuild the net.
"""

import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mugcore.data.batches import clip_lengths, make_loader, move_batch
from mugcore.data.schema import MODALITIES, MMSADataset
from mugcore.errors import UserError
from mugcore.metrics import Metrics, metrics_for_bound, mosi_metrics, sims_metrics
from mugcore.models.multimodal_net import MultimodalNet, NetConfig
from mugcore.models.text_states import frozen_text_states
from trainer import distributed
from trainer.config import TrainerConfig
from trainer.distributed import DistEnv

SELECT_METRIC = "MAE"  # validation figure that picks the checkpoint (lower is better)
# Config fields that may change when a run is resumed: they do not alter what was trained.
RESUMABLE_CHANGES = {"epochs", "patience", "seeds"}


def metric_fn(family: str, label_bound: float) -> Callable[[ArrayLike, ArrayLike], Metrics]:
    """`auto` picks MOSI/MOSEI or SIMS metrics from the label bound H."""
    return {"mosi": mosi_metrics, "sims": sims_metrics}.get(family) or metrics_for_bound(
        label_bound)


def family_name(family: str, label_bound: float) -> str:
    return "sims" if metric_fn(family, label_bound) is sims_metrics else "mosi"


class Stage3Objective(nn.Module):
    """The network plus its loss, as one module so that DDP wraps the whole step."""

    def __init__(self, net: MultimodalNet, beta: float) -> None:
        super().__init__()
        self.net = net
        self.beta = beta
        if beta == 0:
            # Unused parameters would stall DDP's gradient all-reduce; nothing trains them.
            for m in MODALITIES:
                self.net.predictors[m].requires_grad_(False)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        h = self.net.encode(batch)  # modality -> (B, d_u)
        pred_m = self.net.predictors["multimodal"](self.net.fuse(h))  # (B,)
        loss_m = (pred_m - batch["y"]).abs().mean()
        if self.beta == 0:
            return loss_m, loss_m.detach()
        # w_<m>: per-clip weights (--weight-by-uncertainty), else every clip counts the same
        loss_u = sum(((self.net.predictors[m](h[m]) - batch[f"y_{m}"]).abs()
                      * batch.get(f"w_{m}", 1.0)).mean() for m in MODALITIES)
        return loss_m + self.beta * loss_u, loss_m.detach()


@dataclass
class SeedState:
    """What survives an interruption of one seed's training."""

    epoch: int = 0  # epochs completed
    best_valid: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    seconds_per_iteration: float = 0.0


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"--checkpoint {path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        # torch's own words ("PytorchStreamReader failed ... (101)") say nothing to a user.
        raise UserError(f"--checkpoint {path}: not a trainer checkpoint (torch cannot load it: "
                        f"{type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "net_config" not in ckpt:
        raise UserError(f"--checkpoint {path}: not a trainer checkpoint (no model/net_config)")
    return ckpt


def build_net(net_config: dict[str, Any]) -> MultimodalNet:
    return MultimodalNet(config=NetConfig(**net_config))


def predict(net: MultimodalNet, ds: MMSADataset, split: str, env: DistEnv,
            batch_size: int) -> np.ndarray:
    """Multimodal predictions over the whole split, in clip order, on every rank."""
    shard = distributed.eval_indices(env, ds.size(split))
    loader = make_loader(ds, split, batch_size=batch_size, shuffle=False, indices=shard,
                         text_states=frozen_text_states(net, ds, split))
    was_training = net.training
    net.eval()
    index, pred = [], []
    with torch.no_grad():
        for batch in loader:
            batch = move_batch(batch, env.device)
            out = net.predictors["multimodal"](net.fuse(net.encode(batch)))  # (B,)
            index.append(batch["index"].cpu().numpy())
            pred.append(out.float().cpu().numpy())
    net.train(was_training)
    cat = (lambda xs: np.concatenate(xs)) if index else (lambda _: np.zeros(0))
    return distributed.gather_predictions(env, cat(index), cat(pred))


class Stage3Recipe:
    """Train one seed of stage 3 into `out_dir` (checkpoints under out_dir/seed_<seed>)."""

    def __init__(self, *, config: TrainerConfig, ds: MMSADataset,
                 targets: dict[str, np.ndarray] | None, env: DistEnv, out_dir: Path,
                 seed: int, meta: dict[str, Any], progress: bool = True,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        if config.beta > 0 and targets is None:
            raise UserError("beta > 0 needs uni-labels for the train split")
        self.config = config
        self.ds = ds
        self.targets = targets if config.beta > 0 else None
        self.weights = weights if config.beta > 0 else None
        self.env = env
        self.seed = seed
        self.where = f"seed {seed}"  # the progress bar's label (trainer run: seed k of n)
        self.on_step: Callable[[], None] | None = None  # after each training step (estimates)
        self.meta = meta  # dataset / label-set facts stored with the checkpoints
        self.dir = out_dir / f"seed_{seed}"
        self.progress = progress and env.is_main
        self.metrics = metric_fn(config.metrics, ds.label_bound)
        self.state = SeedState()

    # -- setup ---------------------------------------------------------------------------

    def setup(self, *, resume: bool = False) -> None:
        """Seeded network, optimiser and data; continue from last.pt when resuming."""
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        random.seed(self.seed)
        self.net_config = NetConfig.from_dataset(self.ds, **self.config.net)
        for key in self.net_config.unread_features:  # before the loader shares their memory
            self.ds.release(key)
        self.net = MultimodalNet(config=self.net_config).to(self.env.device)
        self.objective: nn.Module = Stage3Objective(self.net, self.config.beta)
        if self.env.distributed:
            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            self.objective = DistributedDataParallel(self.objective, device_ids=ids)
        # fused: one kernel over all parameters, 3x faster than the per-tensor loop on a CPU,
        # where BERT's 22M weights make the optimiser step a large part of an iteration.
        self.optimizer = torch.optim.AdamW(self._param_groups(),
                                           weight_decay=self.config.weight_decay, fused=True)
        self.sampler = distributed.EpochOrder(
            self.env, self.ds.size("train"), seed=self.seed, global_batch=self.config.batch_size,
            lengths=clip_lengths(self.ds, "train") if self.config.bucket_by_length else None)
        self.loader = make_loader(
            self.ds, "train", shuffle=False, sampler=self.sampler, targets=self.targets,
            weights=self.weights,
            batch_size=distributed.local_batch_size(self.env, self.config.batch_size),
            text_states=frozen_text_states(self.net, self.ds, "train"),
            pin_memory=self.config.pin_memory and self.env.device.type == "cuda")
        if resume and (self.dir / "last.pt").is_file():
            self._restore(self.dir / "last.pt")
        if resume and self.env.is_main:  # say where training picks up: after the last save
            print(f"trainer: --resume: seed {self.seed}: {self._resume_point()}",
                  file=sys.stderr)

    def _resume_point(self) -> str:
        done, cfg = self.state.epoch, self.config
        if not done:
            return "no finished epoch saved, starting at epoch 1"
        if done >= cfg.epochs or (cfg.patience and self.state.bad_epochs >= cfg.patience):
            return f"finished after epoch {done}, kept as it is"
        return f"continuing at epoch {done + 1} of {cfg.epochs} (epochs 1-{done} from last.pt)"

    def _param_groups(self) -> list[dict[str, Any]]:
        bert = self.net.encoders["text"].bert if self.net_config.text_encoder == "bert" else None
        bert_ids = {id(p) for p in bert.parameters()} if bert is not None else set()
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        groups = [{"params": [p for p in trainable if id(p) not in bert_ids],
                   "lr": self.config.lr}]
        bert_params = [p for p in trainable if id(p) in bert_ids]
        if bert_params:
            groups.append({"params": bert_params, "lr": self.config.text_lr})
        return groups

    def _restore(self, path: Path) -> None:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        old = {k: v for k, v in ckpt["config"].items() if k not in RESUMABLE_CHANGES}
        new = {k: v for k, v in self.config.to_dict().items() if k not in RESUMABLE_CHANGES}
        changed = sorted(k for k in new if old.get(k) != new[k])
        if changed:
            raise UserError(f"--resume: {path} was trained with other settings of {changed}; "
                            "use another --out or drop --resume")
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.state = SeedState(**ckpt["state"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])

    # -- train ---------------------------------------------------------------------------

    def train_step(self, batch: dict[str, Tensor]) -> tuple[float, float]:
        """One optimiser step on a local batch; returns (total loss, multimodal L1)."""
        with torch.autocast(self.env.device.type, dtype=torch.bfloat16,
                            enabled=self.config.bf16_autocast):
            loss, loss_m = self.objective(move_batch(batch, self.env.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return float(loss.detach()), float(loss_m)

    def train(self) -> SeedState:
        """Epochs until `epochs` or early stopping; best.pt and last.pt after each epoch."""
        cfg, st = self.config, self.state
        if self.env.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=cfg.epochs * len(self.loader), initial=st.epoch * len(self.loader),
                   desc=self.where, unit="it", leave=False,
                   disable=None if self.progress else True)  # None: off when not a terminal
        while st.epoch < cfg.epochs and not (cfg.patience and st.bad_epochs >= cfg.patience):
            self.net.train()
            self.sampler.set_epoch(st.epoch)
            total = total_m = 0.0
            count = 0
            started = time.perf_counter()
            bar.set_description_str(f"{self.where} epoch {st.epoch + 1}/{cfg.epochs}",
                                    refresh=False)
            for batch in self.loader:
                loss, loss_m = self.train_step(batch)
                if self.on_step is not None:
                    self.on_step()
                size = len(batch["y"])
                total, total_m, count = total + loss * size, total_m + loss_m * size, count + size
                bar.update()
                bar.set_postfix(loss=f"{loss:.3f}", best=f"{st.best_valid:.3f}")
            st.seconds_per_iteration = (time.perf_counter() - started) / max(len(self.loader), 1)
            valid = self.evaluate("valid")
            st.epoch += 1
            st.history.append({
                "epoch": st.epoch,
                "train_loss": distributed.mean_over_ranks(self.env, total, count),
                "train_multimodal_l1": distributed.mean_over_ranks(self.env, total_m, count),
                **{f"valid_{k}": v for k, v in valid.items()},
            })
            if valid[SELECT_METRIC] < st.best_valid:
                st.best_valid, st.best_epoch, st.bad_epochs = valid[SELECT_METRIC], st.epoch, 0
                self.save("best.pt", valid=valid)
            else:
                st.bad_epochs += 1
            self.save("last.pt")
        bar.close()
        return st

    # -- evaluate ------------------------------------------------------------------------

    def evaluate(self, split: str, ds: MMSADataset | None = None) -> Metrics:
        """Metrics of the current network's multimodal predictions on a split."""
        ds = ds or self.ds
        pred = predict(self.net, ds, split, self.env, self.config.batch_size)
        return self.metrics(pred, np.asarray(ds.splits[split]["regression_labels"]))

    def load_best(self) -> None:
        distributed.barrier(self.env)  # rank 0 wrote it
        ckpt = torch.load(self.dir / "best.pt", map_location="cpu", weights_only=True)
        self.net.load_state_dict(ckpt["model"])

    # -- save ----------------------------------------------------------------------------

    def save(self, name: str, *, valid: Metrics | None = None) -> None:
        """best.pt: what eval needs (weights, net config, metric family); last.pt: + state."""
        if not self.env.is_main:
            return
        ckpt: dict[str, Any] = {
            "model": self.net.state_dict(),
            "net_config": asdict(self.net_config),
            "config": self.config.to_dict(),
            "seed": self.seed,
            "epoch": self.state.epoch,
            "metrics_family": family_name(self.config.metrics, self.ds.label_bound),
            "label_bound": self.ds.label_bound,
            "meta": self.meta,
        }
        if valid is not None:
            ckpt["valid"] = valid
        if name == "last.pt":
            ckpt["optimizer"] = self.optimizer.state_dict()
            ckpt["state"] = asdict(self.state)
            ckpt["rng"] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                           "python": random.getstate()}
        _atomic_save(ckpt, self.dir / name)
