"""What a stage-3 run leaves behind besides checkpoints: metrics.json, report.md, curves.png."""

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np


def summarise(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """{"mean": {metric: ...}, "std": {metric: ...}} over seeds (population std, 0 for one)."""
    names = list(per_seed[0]) if per_seed else []
    values = {n: np.array([m[n] for m in per_seed], dtype=np.float64) for n in names}
    return {"mean": {n: float(np.nanmean(v)) if not np.isnan(v).all() else float("nan")
                     for n, v in values.items()},
            "std": {n: float(np.nanstd(v)) if not np.isnan(v).all() else float("nan")
                    for n, v in values.items()}}


def write_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def plot_curves(histories: dict[int, list[dict[str, float]]], path: Path) -> None:
    """Train loss and validation MAE per epoch, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_train, ax_valid) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (seed, history) in enumerate(histories.items()):
        epochs = [h["epoch"] for h in history]
        color = f"C{i}"
        ax_train.plot(epochs, [h["train_loss"] for h in history], color=color,
                      label=f"seed {seed} total")
        ax_train.plot(epochs, [h["train_multimodal_l1"] for h in history], color=color,
                      linestyle="--", label=f"seed {seed} multimodal L1")
        ax_valid.plot(epochs, [h["valid_MAE"] for h in history], color=color, marker="o",
                      label=f"seed {seed}")
    ax_train.set(title="training loss", xlabel="epoch", ylabel="L1")
    ax_valid.set(title="validation MAE (multimodal)", xlabel="epoch", ylabel="MAE")
    for ax in (ax_train, ax_valid):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def markdown_report(result: dict[str, Any]) -> str:
    """A readable summary of metrics.json."""
    ds, ls, cfg = result["dataset"], result["label_set"], result["config"]
    lines = [
        "# Stage-3 training report",
        "",
        f"- dataset: {ds.get('name')} (id {ds.get('id')}, label bound {ds.get('label_bound')}"
        + (", SYNTHETIC data" if ds.get("synthetic") else "") + ")",
        f"- uni-labels: {ls.get('method')} (label set {ls.get('id')})",
        f"- beta: {cfg['beta']}; epochs: {cfg['epochs']}; batch: {cfg['batch_size']}; "
        f"lr: {cfg['lr']}; text encoder: {result['net_config'].get('text_encoder')}",
        f"- metric family: {result['metrics_family']}; checkpoint chosen on validation MAE",
        f"- processes: {result['world_size']}; seconds per iteration: "
        f"{_fmt(result['seconds_per_iteration'])}",
        "",
        "## Test metrics",
        "",
    ]
    names = list(result["test"]["mean"])
    lines += ["| seed | best epoch | " + " | ".join(names) + " |",
              "|---" * (len(names) + 2) + "|"]
    for run in result["per_seed"]:
        lines.append(f"| {run['seed']} | {run['best_epoch']} | "
                     + " | ".join(_fmt(run["test"][n]) for n in names) + " |")
    lines.append("| mean ± std | | " + " | ".join(
        f"{_fmt(result['test']['mean'][n])} ± {_fmt(result['test']['std'][n])}" for n in names)
        + " |")
    quality = result.get("unilabel_quality")
    if quality:
        lines += ["", "## Uni-label quality against ground truth (train split)", "",
                  "| modality | MAE | Corr | copy MAE | copy Corr |", "|---|---|---|---|---|"]
        for modality, q in quality.items():
            lines.append(f"| {modality} | {_fmt(q['mae'])} | {_fmt(q['corr'])} | "
                         f"{_fmt(q['copy_mae'])} | {_fmt(q['copy_corr'])} |")
    lines += ["", "## Learning curves", "", "![learning curves](curves.png)", ""]
    return "\n".join(lines)
