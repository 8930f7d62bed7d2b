"""`mug`: uni-labels from MUCNs meta-learned on the stage-1 representations (stage 2), with
the label noise chosen per dataset, a per-modality safety gate and calibrated intervals.

1. Evidence (labelgen/trust/evidence.py): held-out figures per modality, from y_M alone.
2. Stage 2 on a grid of label noises per modality, all in one grouped network; the noise of
   each modality is chosen by the held-out denoising criterion (labelgen/trust/selection.py).
   With `selection.enabled: false` stage 2 trains the configured stage2.noise_* only.
3. The gate (labelgen/trust/gate.py) keeps, shrinks or drops each modality's correction.
4. Consistency (labelgen/trust/consistency.py): the gated labels moved onto the constraint
   that, mixed by weights estimated from the data, they reproduce y_M, so that a modality
   more extreme than y_M can move outward; applied as far as the validation clips confirm
   its direction (`correction.mode: mucn` keeps the paper's MUCN labels).
5. Intervals (labelgen/trust/uncertainty.py) for the gated labels, moved with them.
Everything chosen, gated or estimated goes into provenance. The method reads only the
cached representations and the multimodal labels; generate.py hands it a dataset stripped of
per-modality ground truth, so it cannot peek even by mistake.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from labelgen.config import LabelgenConfig
from labelgen.methods import concat_splits
from labelgen.outputs import MethodOutput
from labelgen.stages.representations import CachedReps
from labelgen.stages.stage2 import Member, Stage2Result, default_members, run_stage2
from labelgen.trust import gate
from labelgen.trust.consistency import make_consistent, mixing_weights
from labelgen.trust.evidence import gather_evidence
from labelgen.trust.selection import candidate_members, choose_noise
from labelgen.trust.uncertainty import conformal_intervals, follow_push
from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset


def generate(ds: MMSADataset, reps: CachedReps, config: LabelgenConfig, seed: int, *,
             on_progress: Callable[[float], None] | None = None) -> MethodOutput:
    members = (candidate_members(config.selection.noise_grid) if config.selection.enabled
               else default_members(config.stage2))
    result = run_stage2(reps, config.stage2, seed=seed, members=members,
                        on_progress=on_progress)
    return finish(ds, reps, result, config, seed)


def finish(ds: MMSADataset, reps: CachedReps, result: Stage2Result, config: LabelgenConfig,
           seed: int) -> MethodOutput:
    """Selection, gate and intervals on a trained stage 2 (its members must include the
    candidates of `config`)."""
    out_of_fold = bool(reps.info.get("cross_fit", {}).get("train_out_of_fold", False))
    evidence = gather_evidence(reps, train_out_of_fold=out_of_fold, seed=seed)
    provenance: dict[str, Any] = {"evidence": {m: e.as_dict() for m, e in evidence.items()}}
    if config.selection.enabled:
        choices = choose_noise(result, evidence, candidates=config.selection.noise_grid,
                               scale=config.selection.noise_scale, seed=seed)
        chosen = {m: choices[m].member for m in MODALITIES}
        provenance["selection"] = {
            "criterion": "validation denoising loss at the evidence-matched noise "
                         "(labelgen/trust/selection.py)",
            "cross_fit": reps.info.get("cross_fit"),
            **{m: choices[m].as_dict() for m in MODALITIES}}
    else:
        chosen = {m: Member(m, config.stage2.noise(m)) for m in MODALITIES}
        provenance["selection"] = {"enabled": False,
                                   **{m: {"noise": chosen[m].noise} for m in MODALITIES}}
    keep = {m: 1.0 for m in MODALITIES}
    if config.gate.enabled:
        g = config.gate
        decisions = {m: gate.decide(evidence[m], min_signal_z=g.min_signal_z,
                                    min_own_z=g.min_own_z, unique_low=g.unique_low,
                                    unique_high=g.unique_high, summary_below=g.summary_below)
                     for m in MODALITIES}
        keep = {m: d.keep for m, d in decisions.items()}
        provenance["gate"] = {m: d.as_dict() for m, d in decisions.items()}
    else:
        provenance["gate"] = {"enabled": False}

    y_m = {s: reps.splits[s].y for s in SPLITS}
    gated = {m: concat_splits({s: gate.apply(y_m[s], result.labels[chosen[m]][s], keep[m])
                               for s in SPLITS}, ds, f"mug labels for {m}")
             for m in MODALITIES}
    labels = gated
    if config.correction.mode == "consistent":
        labels, consistency = make_consistent(
            gated, concat_splits(y_m, ds, "y_M"),
            weights=mixing_weights(reps, train_out_of_fold=out_of_fold), keep=keep,
            n_train=ds.size("train"), n_valid=ds.size("valid"), bound=reps.bound,
            direction_check=config.correction.direction_check)
        provenance["consistency"] = consistency.as_dict()
    else:
        provenance["consistency"] = {"mode": "mucn", "reason": "correction.mode is mucn"}
    # the intervals rest on the evidence-matched noise whatever noise trained the MUCN
    spread = {m: config.selection.noise_scale * evidence[m].residual_sd for m in MODALITIES}
    uncertainty, summary = _uncertainty(result, chosen, keep, spread=spread, config=config,
                                        seed=seed)
    for m in MODALITIES if uncertainty else ():
        lower, upper = follow_push(uncertainty[f"{m}_lower"], uncertainty[f"{m}_upper"],
                                   labels[m] - gated[m], reach=config.uncertainty.push_reach,
                                   bound=reps.bound)
        uncertainty[f"{m}_lower"], uncertainty[f"{m}_upper"] = lower, upper
        summary[m]["mean_width"] = round(float((upper - lower).mean()), 5)
    provenance["uncertainty"] = summary
    provenance["stage2"] = {"seconds": result.seconds, "members": len(result.mucns.members),
                            **{m: result.info[chosen[m]] for m in MODALITIES}}
    return MethodOutput(labels=labels, uncertainty=uncertainty, provenance=provenance)


def _uncertainty(result: Stage2Result, chosen: dict[str, Member], keep: dict[str, float], *,
                 spread: dict[str, float], config: LabelgenConfig,
                 seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    level = config.uncertainty.level
    if not config.uncertainty.enabled:
        return {}, {"method": "none", "reason": "uncertainty.enabled is false"}
    arrays: dict[str, np.ndarray] = {}
    summary: dict[str, Any] = {"method": "split conformal on the held-out denoising task, "
                                         "normalised per clip by |label| and the spread "
                                         "of the candidate MUCNs (labelgen/trust/uncertainty.py)",
                               "level": level}
    members = result.mucns.members
    candidates = set(config.selection.noise_grid) if config.selection.enabled else set()
    for m in MODALITIES:
        member = members.index(chosen[m])
        peers = [i for i, c in enumerate(members) if c.modality == m and c.noise in candidates]
        intervals = conformal_intervals(result.mucns, member, keep=keep[m], noise=spread[m],
                                        level=level, seed=seed, peers=peers,
                                        spread_weight=config.uncertainty.spread_weight(m))
        arrays[f"{m}_std"], arrays[f"{m}_lower"], arrays[f"{m}_upper"] = (
            intervals.std, intervals.lower, intervals.upper)
        summary[m] = {"noise": round(spread[m], 5),
                      "mean_std": round(float(intervals.std.mean()), 5),
                      "mean_width": round(float((intervals.upper - intervals.lower).mean()), 5)}
    return arrays, summary
