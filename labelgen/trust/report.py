"""Plain-text lines that tell a user what `mug` decided and how far to trust it.

Used by `labelgen run` and the demo: one short line per modality, in plain words, read at a
terminal. The evidence behind each decision (effect sizes, z-scores, every noise candidate) is
in the label set's provenance (`gate`, `selection`, `consistency`, `uncertainty`,
`ensemble`), which the API returns and the explorer shows folded away. Provenance is read
defensively (`.get`): its evidence fields change between versions, and a line is better than
a KeyError.
"""

from collections.abc import Mapping
from typing import Any

from mugcore.data.schema import MODALITIES

COPY_MEANS = "copy = the multimodal label used as every uni-label (the naive baseline)"


def _why(decision: str, reason: str) -> str:
    """Why the gate decided so, in plain words, from its decision and its reason's wording."""
    text = reason.lower()
    if "mean of" in text and "runs" in text and "(" in text:
        runs = text[text.index("(") + 1:text.find(")")].split(", ")
        if len(set(runs)) > 1:
            return f"the {len(runs)} runs disagreed ({', '.join(runs)})"
    if decision == "copy":
        if "summary of the other two" in text:
            return "it only echoes the other two"
        if "predict" in text or "signal" in text:
            return "its features barely predict y_M"
        return "it shows nothing the other two miss"
    if decision == "shrink":
        return "it shows a little the other two miss"
    if decision == "correct":
        return "it shows sentiment the other two miss"
    return text.split(":")[0][:50]  # a decision this module does not know: its own words


def _decided(decision: str, shrink: Any) -> str:
    if decision == "correct":
        return "corrected"
    if decision == "copy":
        return "kept at y_M (copy)"
    if isinstance(shrink, int | float):
        return f"corrected {100 * shrink:.0f}%"
    return decision


def plain_decision(record: Mapping[str, Any]) -> tuple[str, str]:
    """(what was decided, why) in plain words from one modality's gate record (provenance's
    `gate[m]`: `decision`, `shrink`, `reason`); also the explorer's summary."""
    decision = str(record.get("decision", "?"))
    return _decided(decision, record.get("shrink")), _why(decision, str(record.get("reason", "")))


def plain_direction(provenance: Mapping[str, Any], modality: str) -> str | None:
    """Which way the modality's labels moved from y_M ("away from 0", "toward 0"), from
    provenance's `consistency` (the slope of label minus y_M on y_M over the train clips);
    None without that record or when they moved neither way."""
    record = ((provenance.get("consistency") or {}).get("direction") or {}).get(modality)
    if not isinstance(record, Mapping) or not isinstance(record.get("final_slope"), int | float):
        return None
    slope = record["final_slope"]
    if abs(slope) < 0.02:
        return None
    return "away from 0" if slope > 0 else "toward 0"


def decision_lines(provenance: Mapping[str, Any]) -> list[str]:
    """A header, then per modality: what the gate decided, why, and the interval's half-width;
    a line on seed averaging or cross-fitting when they ran."""
    gate = provenance.get("gate") or {}
    uncertainty = provenance.get("uncertainty") or {}
    decided = [m for m in MODALITIES if isinstance(gate.get(m), Mapping)]
    if not decided:
        return []
    lines = ["decisions (from held-out clips and y_M, the multimodal label; no ground truth):"]
    level = uncertainty.get("level")
    for m in decided:
        what, why = plain_decision(gate[m])
        direction = plain_direction(provenance, m) if gate[m].get("decision") != "copy" else None
        line = f"  {m:>6}: {what}{f' ({direction})' if direction else ''}: {why}"
        width = (uncertainty.get(m) or {}).get("mean_width")
        if isinstance(width, int | float) and isinstance(level, int | float):
            line += f"; {100 * level:.0f}% interval ±{width / 2:.2f}"
        lines.append(line)
    consistency = provenance.get("consistency") or {}
    strength = consistency.get("strength")
    if isinstance(strength, int | float) and round(100 * strength) < 100:
        lines.append(f"  (pushed to fit y_M at {100 * strength:.0f}% strength: held-out clips "
                     "confirm only so much)")
    ensemble = provenance.get("ensemble") or {}
    if ensemble.get("seeds"):
        lines.append(f"  (labels: the mean of {len(ensemble['seeds'])} runs with different "
                     "seeds, as the train split is small)")
    cross_fit = (provenance.get("selection") or {}).get("cross_fit") or {}
    if cross_fit.get("chosen") and cross_fit.get("folds"):
        lines.append(f"  (stage 1 cross-fitted in {cross_fit['folds']} folds: a plain run "
                     "memorised the train split)")
    return lines


def quality_lines(quality: Mapping[str, Mapping[str, float]], split: str = "train") -> list[str]:
    """Uni-label MAE and r against the ground truth beside copy's, with a verdict."""
    lines = [f"uni-labels against the ground truth, {split} split (MAE: lower is better; "
             "r: higher)", f"  {COPY_MEANS}:"]
    for m, q in quality.items():
        mae, copy_mae = q.get("mae"), q.get("copy_mae")
        if not isinstance(mae, int | float) or not isinstance(copy_mae, int | float):
            continue
        change = 100 * (mae / copy_mae - 1) if copy_mae else 0.0
        verdict = "better" if change < -0.5 else ("worse" if change > 0.5 else "level")
        lines.append(f"  {m:>6}: MAE {mae:.3f} vs copy {copy_mae:.3f} ({change:+.1f}%, "
                     f"{verdict}); r {q.get('corr', float('nan')):.2f} vs "
                     f"{q.get('copy_corr', float('nan')):.2f}")
    return lines
