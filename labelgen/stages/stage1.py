"""Stage 1: pre-training of encoders, fusion, predictors and the CPM; then the cache.

Loss per batch (DESIGN.md section 3):
    L1(P_M(h_M), y_M) + sum_u [ L1(P_u(h_u), y_M) + L1(P_u(z_u), y_M) + lambda * L_cl^u ]
with z_u = Phi_u(h_M) and L_cl^u = InfoNCE(z_u, sg(h_u)). Early stopping keeps the weights
of the epoch with the lowest validation MAE of P_M.

Cross-fitting (stage1.cross_fit_folds = K >= 2): the train split is cut into K folds (whole
videos by default) and K models are trained, each on K-1 folds, all from the same
initialisation. A train clip's representation comes from the model that never saw it;
valid/test clip i takes model i mod K, so every split is a like mixture of the K models.
Without it a train clip's representation echoes its own multimodal label, which leaves MUCN
no independent evidence to correct it with.

Device and ranks (`env`, mugcore.device): the networks and the data live on env.device, the
cache comes back to the CPU as numpy. Under torchrun the K trainings are spread over the
ranks (`spread`): each trains its folds and extracts their rows, and every rank assembles
the same cache. A training depends on the seed and its fold alone, so the cache does not
depend on the number of ranks.
"""

import copy
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labelgen.config import Stage1Config
from labelgen.stages.cpm import ContrastiveProjection
from labelgen.stages.representations import CachedReps, SplitReps
from mugcore.data.batches import make_loader
from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset
from mugcore.device import DistEnv, local, spread
from mugcore.errors import UserError
from mugcore.models.multimodal_net import MultimodalNet, NetConfig
from mugcore.models.text_encoder import BertTextEncoder
from mugcore.models.text_states import frozen_text_states


@dataclass(frozen=True)
class Stage1Tick:
    """Where a stage-1 training is after a batch: what progress bars name and ETAs use."""

    fold: int  # 0-based training of this run_stage1 call (the fold when cross-fitting)
    folds: int  # K when cross-fitting, 0 for the one plain training
    epoch: int  # 1-based epoch under way
    max_epochs: int
    best_epoch: int  # the best epoch so far (0: none yet); early stopping waits `patience`
    patience: int
    batch: int  # batches done in this epoch
    batches: int  # batches per epoch of this training


OnProgress = Callable[[Stage1Tick], None]
EVAL_BATCH = 128


class PretrainNet(nn.Module):
    """MultimodalNet plus the CPM projectors."""

    def __init__(self, *, net: NetConfig, projector_hidden: int, temperature: float) -> None:
        super().__init__()
        self.net = MultimodalNet(config=net)
        self.cpm = ContrastiveProjection(fused_dim=net.fusion_dim,
                                         unimodal_dims=net.unimodal_dims,
                                         hidden=projector_hidden, temperature=temperature)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor],
                                                              torch.Tensor,
                                                              dict[str, torch.Tensor]]:
        h = self.net.encode(batch)  # modality -> (B, d_u)
        h_m = self.net.fuse(h)  # (B, d_M)
        z = self.cpm(h_m)  # modality -> (B, d_u)
        return h, h_m, z


def stage1_loss(model: PretrainNet, batch: dict[str, torch.Tensor],
                config: Stage1Config) -> torch.Tensor:
    h, h_m, z = model(batch)
    y = batch["y"]  # (B,)
    predictors = model.net.predictors
    loss = F.l1_loss(predictors["multimodal"](h_m), y)
    contrastive = model.cpm.contrastive_losses(z, h) if config.contrastive else {}
    for u in MODALITIES:
        loss = loss + F.l1_loss(predictors[u](h[u]), y) + F.l1_loss(predictors[u](z[u]), y)
        if u in contrastive:
            loss = loss + config.contrastive_weight * contrastive[u]
    return loss


@torch.no_grad()
def extract(model: PretrainNet, ds: MMSADataset, split: str,
            indices: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every representation and prediction of the clips `indices` of `split` (all if None)."""
    model.eval()
    loader = make_loader(ds, split, batch_size=EVAL_BATCH, shuffle=False, indices=indices,
                         text_states=frozen_text_states(model.net, ds, split),
                         device=next(model.parameters()).device)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        h, h_m, z = model(batch)
        predictors = model.net.predictors
        row = {"h_m": h_m, "pred_m": predictors["multimodal"](h_m)}
        for u in MODALITIES:
            row[f"h_{u}"] = h[u]
            row[f"z_{u}"] = z[u]
            row[f"pred_{u}"] = predictors[u](h[u])
        for key, value in row.items():
            parts.setdefault(key, []).append(value.float().cpu().numpy())
    return {key: np.concatenate(value) for key, value in parts.items()}


@dataclass
class TrainRun:
    model: PretrainNet
    epochs: int
    best_epoch: int
    best_valid_mae: float  # the early-stopping figure at best_epoch
    iterations: int
    train_seconds: float
    # per epoch, the representations of `snapshot_rows` of the train split
    snapshots: list[dict[str, np.ndarray]] = field(default_factory=list)


def train_model(ds: MMSADataset, config: Stage1Config, net: NetConfig, *, seed: int,
                train_rows: np.ndarray | None = None, snapshot_rows: np.ndarray | None = None,
                on_batch: Callable[[int, int, int], None] | None = None,
                device: torch.device | str = "cpu") -> TrainRun:
    """Train one PretrainNet on `train_rows` of the train split, early-stopped on valid."""
    torch.manual_seed(seed)  # the same initialisation for every fold
    # built on the CPU, then moved: the same initial weights on every device
    model = PretrainNet(net=net, projector_hidden=config.projector_hidden,
                        temperature=config.temperature).to(device)
    if config.bf16_bert and torch.device(device).type != "cuda":
        raise UserError("stage1.bf16_bert needs a GPU (--device cuda); on a CPU bf16 only "
                        "slows BERT down")
    text = model.net.encoders["text"]
    if isinstance(text, BertTextEncoder):
        # every token id checked once, here on the CPU, instead of on each batch, where the
        # check is a GPU sync that stalls every step
        for split in SPLITS:
            text.check_ids(torch.from_numpy(np.rint(np.asarray(ds.splits[split]["text_bert"])
                                                    [:, 0])))
        text.ids_checked = True
        if config.bf16_bert:
            text.autocast = torch.bfloat16
    bert = [p for n, p in model.named_parameters() if ".bert." in n and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if ".bert." not in n and p.requires_grad]
    groups = [{"params": rest, "lr": config.lr}]
    if bert:
        groups.append({"params": bert, "lr": config.bert_lr})
    # fused: one kernel over all parameters (3x faster on a CPU with BERT's 22M weights)
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay, fused=True)
    loader = make_loader(ds, "train", batch_size=config.batch_size, shuffle=True, seed=seed,
                         indices=train_rows, bucket_by_length=config.bucket_by_length,
                         text_states=frozen_text_states(model.net, ds, "train"), device=device)
    valid_y = np.asarray(ds.splits["valid"]["regression_labels"], dtype=np.float64)
    best_mae, best_state, best_epoch = float("inf"), None, 0
    iterations, train_seconds, epoch = 0, 0.0, 0
    snapshots: list[dict[str, np.ndarray]] = []
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        started = time.perf_counter()
        done_before = iterations
        for batch in loader:
            optimizer.zero_grad()
            stage1_loss(model, batch, config).backward()
            optimizer.step()
            iterations += 1
            if on_batch is not None:  # (epoch, its batches so far, best epoch)
                on_batch(epoch, iterations - done_before, best_epoch)
            if config.max_iterations and iterations >= config.max_iterations:
                break
        train_seconds += time.perf_counter() - started
        valid_mae = validation_mae(extract(model, ds, "valid"), valid_y, config)
        if snapshot_rows is not None:
            snapshots.append(_snapshot(extract(model, ds, "train", snapshot_rows)))
        if valid_mae < best_mae:
            best_mae, best_epoch = valid_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
        if epoch - best_epoch >= config.patience or (
                config.max_iterations and iterations >= config.max_iterations):
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    return TrainRun(model=model, epochs=epoch, best_epoch=best_epoch, best_valid_mae=best_mae,
                    iterations=iterations, train_seconds=train_seconds, snapshots=snapshots)


def validation_mae(rows: dict[str, np.ndarray], y: np.ndarray, config: Stage1Config) -> float:
    """The figure early stopping minimises (see Stage1Config.early_stopping)."""
    keys = ["pred_m"] if config.early_stopping == "multimodal" else [
        "pred_m", *(f"pred_{u}" for u in MODALITIES)]
    return float(np.mean([np.abs(rows[k] - y).mean() for k in keys]))


def _snapshot(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"multimodal": rows["h_m"], **{u: rows[f"h_{u}"] for u in MODALITIES}}


def fold_of_train_clips(ds: MMSADataset, config: Stage1Config, seed: int) -> np.ndarray:
    """Fold number (0..K-1) of every train clip; videos stay whole when cross_fit_by=video."""
    ids = np.asarray(ds.splits["train"]["id"]).astype(str)
    units = (np.array([i.split("$_$")[0] for i in ids]) if config.cross_fit_by == "video"
             else ids)
    names, unit_of_clip = np.unique(units, return_inverse=True)
    k = config.cross_fit_folds
    if len(names) < k:
        raise UserError(f"stage1.cross_fit_folds={k} needs at least {k} train "
                        f"{config.cross_fit_by}s, the dataset has {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of_unit = np.empty(len(names), dtype=np.int64)
    fold_of_unit[order] = np.arange(len(names)) % k
    return fold_of_unit[unit_of_clip]


def run_stage1(ds: MMSADataset, config: Stage1Config, *, seed: int, snapshots: bool = False,
               on_progress: OnProgress | None = None, env: DistEnv | None = None) -> CachedReps:
    """Pre-train (once, or K times when cross-fitting) and cache every representation, on
    env's device (default: the CPU, one process), the K trainings spread over env's ranks."""
    env = env or local("cpu")
    net = NetConfig.from_dataset(ds, **config.net)
    n_train = ds.size("train")
    k = config.cross_fit_folds
    # Training f fits the train clips outside fold f and gives the rows of each split that
    # are its own: the held-out train clips, and valid/test clip i when i mod K = f.
    if k:
        folds = fold_of_train_clips(ds, config, seed)
        fits = [np.flatnonzero(folds != f) for f in range(k)]
        own = [{"train": np.flatnonzero(folds == f),
                **{s: np.arange(f, ds.size(s), k) for s in ("valid", "test")}}
               for f in range(k)]
    else:
        fits = [None]
        own = [{s: np.arange(ds.size(s)) for s in SPLITS}]

    def on_batch(f: int, epoch: int, batch: int, best_epoch: int) -> None:
        if on_progress is not None:
            rows = n_train if fits[f] is None else len(fits[f])
            on_progress(Stage1Tick(fold=f, folds=k, epoch=epoch, max_epochs=config.max_epochs,
                                   best_epoch=best_epoch, patience=config.patience,
                                   batch=batch, batches=-(-rows // config.batch_size)))

    def train(f: int) -> _Training:
        run = train_model(ds, config, net, seed=seed, train_rows=fits[f],
                          snapshot_rows=own[f]["train"] if snapshots else None,
                          on_batch=functools.partial(on_batch, f), device=env.device)
        rows = {s: extract(run.model, ds, s, None if fits[f] is None else own[f][s])
                for s in SPLITS}
        summary = {"epochs": run.epochs, "best_epoch": run.best_epoch,
                   "best_valid_mae": run.best_valid_mae, "iterations": run.iterations,
                   "train_seconds": run.train_seconds}
        return _Training(summary=summary, rows=rows, snapshots=run.snapshots)

    started = time.perf_counter()
    trainings = spread(env, len(fits), train)
    rows = {s: _assemble([t.rows[s] for t in trainings], [o[s] for o in own], ds.size(s))
            for s in SPLITS}
    train_snapshots = (_assemble_snapshots(trainings, [o["train"] for o in own], n_train)
                       if snapshots else [])
    runs = [t.summary for t in trainings]
    info = {
        "net": net.__dict__.copy(),
        "runs": runs,
        "seconds_per_iteration": sum(r["train_seconds"] for r in runs)
        / max(sum(r["iterations"] for r in runs), 1),
        "seconds": time.perf_counter() - started,
    }
    splits = {s: _split_reps(rows[s], ds, s) for s in SPLITS}
    return CachedReps(splits=splits, bound=ds.label_bound, train_snapshots=train_snapshots,
                      info=info, device=str(env.device))


@dataclass
class _Training:
    """What one training of run_stage1 hands back (plain data: it may travel between ranks)."""

    summary: dict[str, float]
    rows: dict[str, dict[str, np.ndarray]]  # split -> extracted arrays of the training's rows
    snapshots: list[dict[str, np.ndarray]]  # per epoch, its held-out train rows


def _assemble(parts: list[dict[str, np.ndarray]], rows: list[np.ndarray],
              n: int) -> dict[str, np.ndarray]:
    """Scatter per-model extractions back to dataset order."""
    out = {}
    for key in parts[0]:
        full = np.empty((n, *parts[0][key].shape[1:]), dtype=np.float32)
        for part, idx in zip(parts, rows, strict=True):
            full[idx] = part[key]
        out[key] = full
    return out


def _assemble_snapshots(trainings: list[_Training], held_out: list[np.ndarray],
                        n_train: int) -> list[dict[str, np.ndarray]]:
    """Epoch e's out-of-fold snapshot; a fold that stopped earlier repeats its last one."""
    epochs = max(len(t.snapshots) for t in trainings)
    return [_assemble([t.snapshots[min(e, len(t.snapshots) - 1)] for t in trainings],
                      held_out, n_train) for e in range(epochs)]


def _split_reps(rows: dict[str, np.ndarray], ds: MMSADataset, split: str) -> SplitReps:
    return SplitReps(
        h={u: rows[f"h_{u}"] for u in MODALITIES},
        z={u: rows[f"z_{u}"] for u in MODALITIES},
        h_m=rows["h_m"],
        pred={u: rows[f"pred_{u}"] for u in MODALITIES},
        pred_m=rows["pred_m"],
        y=np.asarray(ds.splits[split]["regression_labels"], dtype=np.float32),
    )
