"""Per-clip uncertainty of `mug`'s uni-labels: calibrated intervals and standard deviations.

Construction (split conformal prediction with a normalised score; Lei et al. 2018, through
MAPIE's SplitConformalRegressor and ResidualNormalisedScore):

- The uni-label of modality u applies the (gated) corrector
  c(h_u, y~) = y~ + lambda_u * (MUCN_u(h_u, y~) - y~) to the clean y_M. Its error against the
  unobserved s_u is modelled by the error of the same corrector on MUG's own unimodal
  denoising task, where the truth is known: inputs y~ = y_M + eps with
  eps ~ N(0, (sigma_u H)^2), sigma_u the evidence-matched noise of labelgen/trust/selection.py
  (residual_sd: the held-out spread of y_M around what the modality shows), target y_M.
- Each clip's scale (`ClipScale`) is 0.5 + |label| / H + k_u * spread / H: labels far from
  neutral are the least sure, and so are those on which the modality's MUCNs trained at the
  selection's candidate noises disagree (spread: their standard deviation for the clip, an
  ensemble's disagreement; zero when selection is off and one MUCN per modality trains).
  The weights k_u (`uncertainty.spread_weight_*`: 4 for text, 2 for audio and vision) were
  chosen on the suite's tuning seeds: k = 2 for all raised the median Spearman of std and
  true error from 0.15 / 0.26 / 0.22 to 0.19 / 0.27 / 0.25 (text / audio / vision), larger k
  hurt audio, and text alone rose from 0.186 at k = 2 to 0.197 at k = 4 (docs/robustness.md).
  A scale learnt from the denoising errors was tried and rejected: there the errors shrink
  toward the bounds, where the clamp to [-H, H] helps, and on the suite that ordering ran
  against the true errors of the uni-labels.
- Calibration: the denoising errors of the validation clips, which stage 2 did not train on,
  divided by that scale; their conformal quantile at `level` sets the half-width:
  interval = label +- q * scale(clip). The standard deviation reported beside
  it is half the width over the normal quantile of the level (what a Gaussian error of
  that interval would have).

Assumption: y_M relates to s_u as y~ relates to y_M, i.e. the spread of y_M around s_u is
sigma_u H and the errors' shape carries over. Conformal calibration makes the intervals
exact for the denoising task; their coverage of the true uni-labels holds as far as this
assumption does, which the robustness suite measures (docs/robustness.md).
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin

from labelgen.stages.stage2 import TrainedMUCNs
from mugcore.data.schema import SPLITS

DRAWS = 8  # noise draws per validation clip for the calibration


class GatedCorrector(RegressorMixin, BaseEstimator):
    """sklearn face of one member's corrector: rows of X are [y~, h_u...]."""

    def __init__(self, mucns: TrainedMUCNs, member: int, keep: float,
                 peers: list[int]) -> None:
        self.mucns, self.member, self.keep, self.peers = mucns, member, keep, peers
        self.fitted_ = True  # trained by stage 2; sklearn's fitted check looks for a `_` name

    def fit(self, x: np.ndarray, y: np.ndarray) -> "GatedCorrector":
        return self  # trained by stage 2

    def corrections(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This member's gated labels (N,) and the raw corrections of its peers (P, N)."""
        y_in, h = x[:, 0], x[:, 1:]
        every = self.mucns.correct_rows(self.mucns.members[self.member].modality, h, y_in)
        return y_in + self.keep * (every[self.member] - y_in), every[self.peers]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.corrections(x)[0]


class ClipScale(RegressorMixin, BaseEstimator):
    """The per-clip scale of the normalised score:
    `floor` + (|corrected label| + `spread_weight` * spread of the modality's MUCNs) / H.

    A uni-label far from neutral is the least sure: y_M averages the modalities (and the
    annotators) and so is pulled toward 0, while one modality's own sentiment may lie further
    out, and no correction can tell by how much. Where MUCNs trained at different label
    noises disagree on a clip, its correction hangs on a setting the data could not pin
    down. The scale sets only how the calibrated width is shared out between clips; the
    overall width comes from the conformal quantile.
    """

    def __init__(self, corrector: GatedCorrector, spread_weight: float,
                 floor: float = 0.5) -> None:
        self.corrector, self.spread_weight, self.floor = corrector, spread_weight, floor
        self.fitted_ = True

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ClipScale":
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        labels, peers = self.corrector.corrections(x)
        spread = peers.std(axis=0)
        bound = self.corrector.mucns.reps.bound
        return self.floor + (np.abs(labels) + self.spread_weight * spread) / bound


@dataclass(frozen=True)
class Intervals:
    std: np.ndarray  # (N_all,)
    lower: np.ndarray
    upper: np.ndarray


def conformal_intervals(mucns: TrainedMUCNs, member: int, *, keep: float, noise: float,
                        level: float, seed: int, peers: list[int] | None = None,
                        spread_weight: float = 0.0) -> Intervals:
    """Intervals of member `member`'s gated uni-labels for every clip, train..test order.
    `peers`: the members (of its modality) whose disagreement, times `spread_weight`, widens a
    clip's interval; default: the member alone (no spread)."""
    from mapie.conformity_scores import ResidualNormalisedScore
    from mapie.regression import SplitConformalRegressor

    rng = np.random.default_rng(seed)
    bound = mucns.reps.bound
    modality = mucns.members[member].modality

    def rows(split: str, draws: int) -> tuple[np.ndarray, np.ndarray]:
        reps = mucns.reps.splits[split]
        y = np.tile(reps.y.astype(np.float64), draws)
        noisy = y + noise * bound * rng.standard_normal(len(y))
        h = np.tile(reps.h[modality], (draws, 1))
        return np.column_stack([noisy, h]), y

    corrector = GatedCorrector(mucns, member, keep, peers if peers else [member])
    scale = ClipScale(corrector, spread_weight)
    conformal = SplitConformalRegressor(
        estimator=corrector, confidence_level=level, prefit=True,
        conformity_score=ResidualNormalisedScore(residual_estimator=scale, prefit=True))
    conformal.conformalize(*rows("valid", DRAWS))

    clean = np.column_stack([
        np.concatenate([mucns.reps.splits[s].y for s in SPLITS]).astype(np.float64),
        np.concatenate([mucns.reps.splits[s].h[modality] for s in SPLITS])])
    labels, bounds = conformal.predict_interval(clean)  # bounds: (N, 2, 1)
    lower = np.clip(bounds[:, 0, 0], -bound, bound)
    upper = np.clip(bounds[:, 1, 0], -bound, bound)
    # the uni-labels are clipped to [-H, H] as the intervals are, so each lies inside its own
    lower, upper = np.minimum(lower, labels), np.maximum(upper, labels)
    half = (bounds[:, 1, 0] - bounds[:, 0, 0]) / 2
    std = half / norm.ppf(0.5 + level / 2)
    return Intervals(std=std.astype(np.float32), lower=lower.astype(np.float32),
                     upper=upper.astype(np.float32))


def follow_push(lower: np.ndarray, upper: np.ndarray, push: np.ndarray, *, reach: float,
                bound: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval of a label the consistent correction moved by `push` (labelgen/trust/
    consistency.py): MUCN's interval and the same moved `reach` times the push, within
    [-H, H]. How far the push should go is itself uncertain, and it only partly undoes MUCN's
    shrink of the modality it moves."""
    moved = reach * push
    return (np.maximum(np.minimum(lower, lower + moved), -bound).astype(np.float32),
            np.minimum(np.maximum(upper, upper + moved), bound).astype(np.float32))
