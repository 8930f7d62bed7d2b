"""The uncertainty part of `labelgen report`: coverage and width of the per-clip intervals.

uncertainty.png, one column per modality:
- top (with ground truth): the share of clips whose true uni-label lies inside the interval,
  per tenth of the clips sorted by their std, beside the nominal level; a flat line at the
  level means the intervals are calibrated for small and large uncertainties alike;
- bottom: the distribution of interval widths (upper - lower).
The table gives coverage, mean width and Spearman(std, |uni-label - truth|) per split.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from mugcore.data.schema import MODALITIES, SPLITS

UNCERTAINTY_FILE = "uncertainty.png"
DECILES = 10

Intervals = dict[str, dict[str, np.ndarray]]  # modality -> std / lower / upper


def coverage_figures(labels: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                     intervals: Intervals, split: np.ndarray) -> dict[str, dict[str, dict]]:
    """split -> modality -> coverage, mean width, Spearman(std, |error|)."""
    out: dict[str, dict[str, dict]] = {}
    for s in SPLITS:
        mask = split == s
        if not mask.any():
            continue
        out[s] = {}
        for m in MODALITIES:
            iv = {k: v[mask] for k, v in intervals[m].items()}
            inside = (truth[m][mask] >= iv["lower"] - 1e-6) & (truth[m][mask] <= iv["upper"] + 1e-6)
            error = np.abs(labels[m][mask] - truth[m][mask])
            out[s][m] = {"coverage": float(inside.mean()),
                         "mean_width": float((iv["upper"] - iv["lower"]).mean()),
                         "spearman_std_error": float(spearmanr(iv["std"], error)[0])}
    return out


def plot_uncertainty(labels: dict[str, np.ndarray], truth: dict[str, np.ndarray] | None,
                     intervals: Intervals, level: float | None, path: Path) -> None:
    rows = 2 if truth is not None else 1
    fig = Figure(figsize=(5 * len(MODALITIES), 3.8 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, len(MODALITIES), squeeze=False))
    for col, m in enumerate(MODALITIES):
        iv = intervals[m]
        if truth is not None:
            order = np.argsort(iv["std"], kind="stable")
            parts = np.array_split(order, DECILES)
            inside = (truth[m] >= iv["lower"] - 1e-6) & (truth[m] <= iv["upper"] + 1e-6)
            ax = axes[0, col]
            ax.plot(range(1, DECILES + 1), [inside[p].mean() for p in parts], "o-",
                    label="coverage of the truth")
            if level is not None:
                ax.axhline(level, color="k", ls="--", lw=1, label=f"nominal {level:.0%}")
            ax.set(title=m, xlabel="tenth of the clips by std (1 = most certain)",
                   ylabel="share inside the interval", ylim=(0, 1.05))
            ax.legend(fontsize="small")
        ax = axes[-1, col]
        ax.hist(iv["upper"] - iv["lower"], bins=40)
        ax.set(title=m if truth is None else "", xlabel=f"{m} interval width", ylabel="clips")
    fig.suptitle("Per-clip uncertainty of the uni-labels")
    temp = path.with_name(f".{path.name}.tmp")
    fig.savefig(temp, format="png", dpi=110)
    temp.replace(path)


def format_coverage(figures: dict[str, dict[str, dict]], level: float | None) -> str:
    head = f"per-clip intervals (nominal coverage {level:.0%}):" if level else "intervals:"
    lines = [head]
    for s, per in figures.items():
        for m, f in per.items():
            lines.append(f"  {s:>5} {m:>6}: coverage {f['coverage']:.3f}, mean width "
                         f"{f['mean_width']:.3f}, Spearman(std, |error|) "
                         f"{f['spearman_std_error']:+.2f}")
    return "\n".join(lines)
