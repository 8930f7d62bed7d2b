"""Plain-text lines that tell a user what `mug` decided and how far to trust it.

Used by `labelgen run` and the demo; the same facts are in the label set's provenance
(`selection`, `gate`, `uncertainty`), which the API returns with the label set.
"""

from typing import Any

from mugcore.data.schema import MODALITIES

COPY_MEANS = ("copy = the multimodal label used as every uni-label (the naive baseline); "
              "MAE against the ground truth, lower is better")


def decision_lines(provenance: dict[str, Any]) -> list[str]:
    """Per modality: the gate's decision and reason, the chosen noise, the interval width."""
    gate, selection = provenance.get("gate") or {}, provenance.get("selection") or {}
    uncertainty = provenance.get("uncertainty") or {}
    if not gate and not selection:
        return []
    lines = ["decisions (held-out evidence and multimodal labels only, no ground truth):"]
    cross_fit = selection.get("cross_fit") or {}
    if cross_fit.get("chosen"):
        gaps = ", ".join(f"{m} {g:+.2f}" for m, g in cross_fit["memorisation_gap"].items())
        state = f"on, {cross_fit['folds']} folds" if cross_fit["folds"] else "off"
        lines.append(f"  cross-fitting {state} (memorisation gap in R^2: {gaps}; threshold "
                     f"{cross_fit['threshold']:g})")
    ensemble = provenance.get("ensemble") or {}
    if ensemble:
        lines.append(f"  {ensemble['reason']}; seeds {', '.join(map(str, ensemble['seeds']))}; "
                     "gate and noise below: the runs' mean and the first run's")
    for m in MODALITIES:
        parts = [f"  {m:>6}:"]
        if m in gate:
            g = gate[m]
            parts.append(f"{g['decision']} (keeps {100 * g['shrink']:.0f}% of the correction: "
                         f"{g['reason']})")
        if "noise" in selection.get(m, {}):
            s = selection[m]
            target = f", evidence-matched {s['target_noise']:.2f}" if "target_noise" in s else ""
            parts.append(f"noise {s['noise']:g} H{target}")
        if m in uncertainty:
            parts.append(f"{100 * uncertainty['level']:.0f}% interval width "
                         f"{uncertainty[m]['mean_width']:.2f} on average")
        lines.append(" ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else ""))
    return lines


def quality_lines(quality: dict[str, dict[str, float]], split: str = "train") -> list[str]:
    """Uni-label MAE and r against the ground truth beside copy's, with a verdict."""
    lines = [f"uni-label quality on the {split} split ({COPY_MEANS}):"]
    for m, q in quality.items():
        change = 100 * (q["mae"] / q["copy_mae"] - 1) if q["copy_mae"] else 0.0
        verdict = "better than copy" if change < -0.5 else (
            "worse than copy" if change > 0.5 else "level with copy")
        lines.append(f"  {m:>6}: MAE {q['mae']:.3f} vs copy {q['copy_mae']:.3f} "
                     f"({change:+.1f}%, {verdict}); r {q['corr']:.3f} vs {q['copy_corr']:.3f}")
    return lines
