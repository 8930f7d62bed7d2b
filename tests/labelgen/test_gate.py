"""The safety gate's rules (labelgen/trust/gate.py) on evidence whose reading is known."""

from labelgen.trust.evidence import ModalityEvidence
from labelgen.trust.gate import decide

RULES = {"min_signal_z": 2.0, "min_own_z": 1.0, "unique_low": 0.015, "unique_high": 0.03,
         "summary_below": 0.12}


def evidence(*, r2: float = 0.6, unique: float = 0.1, others_add: float = 0.3) -> ModalityEvidence:
    return ModalityEvidence(r2=r2, r2_se=0.02, unique=unique, unique_se=0.01,
                            others_add=others_add, residual_sd=0.3, rows=400)


def test_signal_and_own_information() -> None:
    assert decide(evidence(r2=0.01), **RULES).decision == "copy"
    assert decide(evidence(unique=0.01), **RULES).decision == "copy"
    shrink = decide(evidence(unique=0.0225), **RULES)
    assert shrink.decision == "shrink" and abs(shrink.keep - 0.5) < 1e-9
    assert decide(evidence(unique=0.1), **RULES).keep == 1.0


def test_a_summary_of_the_other_two_is_copied_a_dominant_modality_is_not() -> None:
    # the others add little beyond it and it adds less beyond them: an echo of y_M
    echo = decide(evidence(r2=0.76, unique=0.042, others_add=0.09), **RULES)
    assert echo.decision == "copy" and "summary of the other two" in echo.reason
    # the others add little beyond it, but it adds much of its own: the dominant modality
    assert decide(evidence(r2=0.84, unique=0.35, others_add=0.05), **RULES).keep == 1.0
    # the rule off
    assert decide(evidence(r2=0.76, unique=0.042, others_add=0.09),
                  **{**RULES, "summary_below": 0.0}).keep == 1.0
