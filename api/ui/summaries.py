"""One-line summaries of a label set's quality figures, safety-gate decisions and uncertainty,
for the datasets page. Provenance is nested JSON whose keys vary by method and version: only
the keys documented for it are read, and anything else is left to the full (generic) view on
the label set's own page."""

from collections.abc import Mapping
from typing import Any

from api.ui.rendering import num
from mugcore.data.schema import MODALITIES

QUALITY_FIGURES = ("mae", "copy_mae", "corr", "copy_corr")


def quality_rows(quality: Mapping[str, Any], split: str = "train") -> list[dict[str, Any]]:
    """Per modality, the figures against ground truth on `split` (or the first split that has
    them); empty when the label set has none."""
    if not isinstance(quality.get(split), Mapping):
        split = next((k for k, v in quality.items() if isinstance(v, Mapping)), "")
        if not split:
            return []
    rows = []
    for m in MODALITIES:
        figures = quality[split].get(m)
        if isinstance(figures, Mapping):
            rows.append({"split": split, "modality": m,
                         **{f: figures.get(f) for f in QUALITY_FIGURES}})
    return rows


def gate_summary(gate: Any) -> list[tuple[str, str]]:
    """(modality, "correct" | "shrink 0.4" | "copy") for each modality the gate decided."""
    if not isinstance(gate, Mapping):
        return []
    out = []
    for m in MODALITIES:
        decision = gate.get(m)
        if isinstance(decision, Mapping) and "decision" in decision:
            text = str(decision["decision"])
            if text == "shrink" and decision.get("shrink") is not None:
                text += f" {num(decision['shrink'], 2)}"
            out.append((m, text))
    return out


def uncertainty_summary(uncertainty: Any) -> str | None:
    """"method, level 0.9", or "none: reason"; None when provenance says nothing."""
    if not isinstance(uncertainty, Mapping) or "method" not in uncertainty:
        return None
    method = str(uncertainty["method"])
    if method == "none":
        reason = uncertainty.get("reason")
        return f"none: {reason}" if reason else "none"
    level = uncertainty.get("level")
    return method if level is None else f"{method}, level {num(level, 3)}"
