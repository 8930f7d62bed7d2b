"""Seed averaging of `mug` on small train splits: the mean of several whole runs' uni-labels.

On a train split of a few hundred clips one draw of stage-1 initialisation and batch order
can leave the encoders poor, and MUCN then moves labels toward poor predictions: on the
robustness suite a 240-clip world gave text labels 18 % worse than copy on one seed while the
gate's held-out tests passed (docs/robustness.md). Nothing observable flags such a seed, but
runs from different seeds err differently, so their mean is better than a typical run and
far better than the worst. Below `selection.ensemble_below` train clips `mug` therefore runs
stage 1 and stage 2 `selection.ensemble_seeds` times, run r with seed `seed + SEED_STEP * r`,
and serves the mean of the (gated) uni-labels. The cost is that many runs, which small splits
can afford.

Each run keeps its own selection, gate and intervals. The served interval is the mean of the
runs' bounds (it holds the mean label, as each bound holds its run's label), the std the mean
of their stds: each run's interval is calibrated for that run's labels, whose error is larger
than the mean's, so these intervals lean wide (the suite measures by how much).
"""

from typing import Any

import numpy as np

from labelgen.config import LabelgenConfig
from labelgen.outputs import MethodOutput
from mugcore.data.schema import MODALITIES

SEED_STEP = 7919  # a prime, so the runs' seeds stay clear of a user's neighbouring seeds


def run_seeds(config: LabelgenConfig, *, n_train: int, seed: int) -> list[int]:
    """The seeds of the runs to average: [seed] alone unless the train split is small."""
    sel = config.selection
    if not sel.enabled or n_train >= sel.ensemble_below or sel.ensemble_seeds < 2:
        return [seed]
    return [seed + SEED_STEP * r for r in range(sel.ensemble_seeds)]


def average_outputs(outputs: list[MethodOutput], seeds: list[int], *, n_train: int,
                    below: int) -> MethodOutput:
    """One output from the runs' (module doc; a single run's as it is); provenance keeps every
    run's decisions."""
    assert len(outputs) == len(seeds) >= 1, "one output per run seed"
    if len(outputs) == 1:
        return outputs[0]
    labels = {m: np.mean([o.labels[m] for o in outputs], axis=0).astype(np.float32)
              for m in MODALITIES}
    uncertainty = {key: np.mean([o.uncertainty[key] for o in outputs], axis=0).astype(np.float32)
                   for key in outputs[0].uncertainty}
    first = outputs[0].provenance
    provenance: dict[str, Any] = {**first, "ensemble": {
        "seeds": seeds,
        "reason": f"train split of {n_train} clips, under selection.ensemble_below={below}: "
                  f"the mean of {len(seeds)} runs' uni-labels (labelgen/trust/ensemble.py)",
        "runs": [_run_summary(o.provenance, s) for o, s in zip(outputs, seeds, strict=True)]}}
    if isinstance(first.get("gate"), dict) and all(m in first["gate"] for m in MODALITIES):
        provenance["gate"] = {m: _mean_gate([o.provenance["gate"][m] for o in outputs])
                              for m in MODALITIES}
    if uncertainty:
        summary = dict(first["uncertainty"])
        summary["method"] += f"; mean of {len(seeds)} runs' intervals"
        for m in MODALITIES:
            summary[m] = {**summary[m],
                          "mean_std": round(float(uncertainty[f"{m}_std"].mean()), 5),
                          "mean_width": round(float((uncertainty[f"{m}_upper"]
                                                     - uncertainty[f"{m}_lower"]).mean()), 5)}
        provenance["uncertainty"] = summary
    return MethodOutput(labels=labels, uncertainty=uncertainty, provenance=provenance)


def _run_summary(provenance: dict[str, Any], seed: int) -> dict[str, Any]:
    selection, gate = provenance.get("selection") or {}, provenance.get("gate") or {}
    return {"seed": seed,
            "noise": {m: selection[m]["noise"] for m in MODALITIES if m in selection},
            "gate": {m: {"decision": gate[m]["decision"], "shrink": gate[m]["shrink"]}
                     for m in MODALITIES if m in gate}}


def _mean_gate(decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' gate decisions for one modality as one: the mean share of the correction."""
    keep = float(np.mean([d["shrink"] for d in decisions]))
    names = [d["decision"] for d in decisions]
    decision = names[0] if len(set(names)) == 1 else "shrink"
    return {"decision": decision, "shrink": round(keep, 4),
            "reason": f"mean of {len(names)} runs ({', '.join(names)}); first run: "
                      f"{decisions[0]['reason']}",
            "evidence": decisions[0]["evidence"]}
