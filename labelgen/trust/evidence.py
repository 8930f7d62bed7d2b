"""Held-out evidence about each modality, from the stage-1 representations and y_M alone.

Everything the noise selection (labelgen/trust/selection.py) and the safety gate
(labelgen/trust/gate.py) decide rests on these figures; none looks at per-modality truth.

Each modality's representations h_u are read out linearly (ridge regression, penalty chosen by
leave-one-out inside the fit) to predict the multimodal label, alone (`own`), all modalities
but u (`others`), and all three (`all`). Predictions are out of sample: for held-out rows the
read-out is fitted on rows of the other folds (K-fold over the rows). The held-out rows are the
validation split, plus the train split when its representations are out-of-fold themselves
(cross-fitted stage 1), which gives the tests several times the rows on small datasets.

Figures per modality (variances as fractions of Var(y_M) on the held-out rows):
- r2: how much of y_M the modality's features predict;
- unique: r2(all) - r2(others), what only this modality adds; with its bootstrap standard
  error (paired over the same resampled rows);
- others_add: r2(all) - r2(own), what the other two add beyond this modality (small for a
  modality that alone explains nearly all the three explain: a dominant one, or one whose
  sentiment is a mix of the other two);
- residual_sd: RMS of y_M minus the modality's own prediction, in units of H: how far the
  multimodal label strays from what this modality shows. When the features reveal the
  modality's sentiment s_u, it is the spread of y_M around s_u; otherwise it is larger.
"""

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from labelgen.stages.representations import CachedReps
from mugcore.data.schema import MODALITIES

ALPHAS = np.logspace(-2, 4, 13)
FOLDS = 5
BOOTSTRAP = 400


@dataclass(frozen=True)
class ModalityEvidence:
    r2: float
    r2_se: float
    unique: float
    unique_se: float
    others_add: float
    residual_sd: float  # in units of H
    rows: int

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 5) for k, v in asdict(self).items()}


def held_out_rows(reps: CachedReps, *, train_out_of_fold: bool) -> tuple[np.ndarray, np.ndarray]:
    """(X by modality stacked later, y): the rows whose representations no stage-1 model that
    produced them was trained on."""
    splits = ["valid", "train"] if train_out_of_fold else ["valid"]
    y = np.concatenate([reps.splits[s].y for s in splits]).astype(np.float64)
    return np.asarray(splits), y


def gather_evidence(reps: CachedReps, *, train_out_of_fold: bool,
                    seed: int) -> dict[str, ModalityEvidence]:
    """ModalityEvidence per modality (see the module doc)."""
    splits, y = held_out_rows(reps, train_out_of_fold=train_out_of_fold)
    h = {m: np.concatenate([reps.splits[s].h[m] for s in splits]).astype(np.float64)
         for m in MODALITIES}
    folds = list(KFold(FOLDS, shuffle=True, random_state=seed).split(y))

    def predict(modalities: list[str]) -> np.ndarray:
        x = np.concatenate([h[m] for m in modalities], axis=1)
        out = np.empty_like(y)
        for fit_rows, test_rows in folds:
            model = RidgeCV(alphas=ALPHAS).fit(x[fit_rows], y[fit_rows])
            out[test_rows] = model.predict(x[test_rows])
        return out

    err_all = (predict(list(MODALITIES)) - y) ** 2
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, len(y), size=(BOOTSTRAP, len(y)))
    evidence = {}
    for m in MODALITIES:
        own = predict([m])
        err_own = (own - y) ** 2
        err_others = (predict([o for o in MODALITIES if o != m]) - y) ** 2
        r2, unique = _r2(err_own, y), _r2(err_all, y) - _r2(err_others, y)
        r2_boot = [_r2(err_own[b], y[b]) for b in boot]
        unique_boot = [_r2(err_all[b], y[b]) - _r2(err_others[b], y[b]) for b in boot]
        evidence[m] = ModalityEvidence(
            r2=r2, r2_se=float(np.std(r2_boot)), unique=unique,
            unique_se=float(np.std(unique_boot)), others_add=_r2(err_all, y) - r2,
            residual_sd=float(np.sqrt(err_own.mean())) / reps.bound, rows=len(y))
    return evidence


def _r2(squared_errors: np.ndarray, y: np.ndarray) -> float:
    return float(1.0 - squared_errors.mean() / max(float(y.var()), 1e-12))
