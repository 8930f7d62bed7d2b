"""Noise selection without truth: each modality's MUCN label noise chosen per dataset.

The label noise sigma_u is MUG's main knob: MUCN learns to undo Gaussian noise of that size
added to y_M, so applied to the clean y_M it moves the label as far as a label noisy by
sigma_u would be moved toward what modality u's representation shows. Its right value is the
spread of y_M around the modality's own label s_u, which differs between datasets and
modalities.

Criterion. Held-out evidence (labelgen/trust/evidence.py) gives residual_sd_u, the RMS of y_M minus
the modality's own out-of-sample prediction of it: the spread of y_M around what modality u
shows (the spread around s_u when the features reveal s_u; larger when they reveal little,
which the safety gate then answers). Every candidate sigma of the grid is trained (one
grouped stage 2), and scored by MUG's own unimodal denoising task on the validation clips,
which no stage-2 model trained on, at that evidence-matched noise: the mean of
|MUCN_sigma(h_u, y_M + eps) - y_M| over eps ~ N(0, (scale * residual_sd_u * H)^2), several
draws per clip. The candidate with the lowest loss within a factor WINDOW of that noise is
chosen. Why it should track uni-label
quality: the uni-label applies MUCN to y_M as if y_M were a noisy version of s_u; the
candidate that best removes noise of y_M's own size from held-out labels is the one whose
correction of y_M is sized right. It is blind to a modality whose features reveal little
or whose sentiment is y_M itself; the gate covers those (labelgen/trust/gate.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labelgen.stages.stage2 import Member, Stage2Result
from labelgen.trust.evidence import ModalityEvidence
from mugcore.data.schema import MODALITIES

DRAWS = 8  # noise draws per validation clip
# Only candidates within this factor of the evidence-matched noise are eligible: the criterion's
# minimiser should lie near it, and a far-off winner reflects how a MUCN trained, not how much
# y_M strays (on small sets the noisiest member won with +13 % error on a report seed).
WINDOW = 2.0


@dataclass(frozen=True)
class NoiseChoice:
    member: Member
    target_noise: float  # scale * residual_sd, as a fraction of H
    scores: dict[float, float]  # candidate noise -> held-out denoising loss (lower is better)

    def as_dict(self) -> dict[str, object]:
        return {"noise": self.member.noise, "target_noise": round(self.target_noise, 5),
                "candidates": [{"noise": n, "denoising_loss": round(s, 5)}
                               for n, s in sorted(self.scores.items())],
                "criterion": "validation denoising loss at the evidence-matched noise"}


def candidate_members(grid: Sequence[float]) -> list[Member]:
    return [Member(m, float(n)) for m in MODALITIES for n in grid]


def choose_noise(result: Stage2Result, evidence: dict[str, ModalityEvidence], *,
                 candidates: Sequence[float], scale: float,
                 seed: int) -> dict[str, NoiseChoice]:
    """Per modality, the candidate noise with the lowest held-out denoising loss (module doc);
    `result` may have trained more members than the candidates."""
    mucns = result.mucns
    y = mucns.reps.splits["valid"].y.astype(np.float64)
    bound = mucns.reps.bound
    rng = np.random.default_rng(seed)
    unit = rng.standard_normal((DRAWS, len(y)))
    targets = {m: scale * evidence[m].residual_sd for m in MODALITIES}
    members = mucns.members
    losses = np.zeros(len(members))
    for draw in unit:
        noisy = np.stack([y + targets[m.modality] * bound * draw for m in members])  # (G, N)
        out = mucns.correct("valid", noisy)
        losses += np.abs(out - y).mean(axis=1) / DRAWS
    choices = {}
    for modality in MODALITIES:
        scores = {m.noise: float(losses[g]) for g, m in enumerate(members)
                  if m.modality == modality and m.noise in candidates}
        target = targets[modality]
        near = [n for n in scores if target / WINDOW <= n <= target * WINDOW] or [
            min(scores, key=lambda n: abs(np.log(n / max(target, 1e-6))))]
        best = min(near, key=scores.__getitem__)
        choices[modality] = NoiseChoice(member=Member(modality, best),
                                        target_noise=targets[modality], scores=scores)
    return choices
