"""Summaries of a label set's quality figures, safety-gate decisions and uncertainty, for the
datasets page and the top of a label set's page. Provenance is nested JSON whose keys vary by
method and version: only the keys documented for it are read, and anything else is left to the
full (generic) view folded away on the label set's own page."""

from collections.abc import Mapping
from typing import Any

import numpy as np

from api.ui.rendering import num
from labelgen.trust.report import plain_decision, plain_direction
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


def trust_rows(provenance: Mapping[str, Any], quality: list[dict[str, Any]],
               arrays: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per modality, what a researcher reads first: the gate's decision and why (plain words,
    as `labelgen run` prints them), MAE against truth beside copy's with the change in percent
    (when the dataset has truth), and the mean width of the per-clip intervals (all clips)."""
    gate = provenance.get("gate")
    gate = gate if isinstance(gate, Mapping) else {}
    by_modality = {q["modality"]: q for q in quality}
    rows = []
    for m in MODALITIES:
        record = gate.get(m)
        row: dict[str, Any] = {"modality": m, "decision": None, "decided": None, "why": None,
                               "quality": by_modality.get(m), "change": None, "width": None}
        if isinstance(record, Mapping) and "decision" in record:
            row["decision"] = str(record["decision"])
            row["decided"], row["why"] = plain_decision(record)
            direction = plain_direction(provenance, m) if row["decision"] != "copy" else None
            if direction:
                row["why"] += f"; labels moved {direction}"
        q = row["quality"]
        if q and isinstance(q.get("mae"), float) and q.get("copy_mae"):
            # Rounded here, + 0.0: a change of -0.04 % reads "+0.0%", not "-0.0%".
            row["change"] = round(100 * (q["mae"] / q["copy_mae"] - 1), 1) + 0.0
        if f"{m}_upper" in arrays:
            row["width"] = float(np.mean(arrays[f"{m}_upper"] - arrays[f"{m}_lower"]))
        rows.append(row)
    return rows
