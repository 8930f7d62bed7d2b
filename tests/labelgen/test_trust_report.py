"""The plain-words decision and quality lines of `labelgen run` and the demo."""

from labelgen.trust.report import decision_lines, quality_lines
from mugcore.data.schema import MODALITIES

# MADE-UP gate records in provenance's shape, reasons worded as labelgen/trust/gate.py words
# them (their evidence is left out: another version may name it otherwise).
GATE = {
    "text": {"decision": "correct", "shrink": 1.0, "reason": "information of its own: adds "
             "0.153 of Var(y_M) beyond the other modalities (z 9.6)"},
    "audio": {"decision": "shrink", "shrink": 0.5, "reason": "weak information of its own: "
              "adds 0.030 of Var(y_M) beyond the other modalities (z 3.0)"},
    "vision": {"decision": "copy", "shrink": 0.0, "reason": "the features predict held-out "
               "y_M too little (r2 0.001, z 0.1 < 2)"},
}


def test_one_short_plain_line_per_modality() -> None:
    provenance = {
        "gate": GATE,
        "uncertainty": {"level": 0.9, **{m: {"mean_width": 1.2} for m in MODALITIES}},
        "ensemble": {"seeds": [0, 1, 2]},
    }
    lines = decision_lines(provenance)
    assert lines[0].startswith("decisions")
    text, audio, vision = lines[1:4]
    assert text.strip().startswith("text: corrected: ")
    assert audio.strip().startswith("audio: corrected 50%: ")
    assert vision.strip() == ("vision: kept at y_M (copy): its features barely predict y_M; "
                              "90% interval ±0.60")
    assert "mean of 3 runs" in lines[4]
    # The demo indents by 6: every line stays within 100 characters, with no jargon.
    assert all(len("      " + line) <= 100 for line in lines), lines
    assert not any(word in line for line in lines for word in ("Var(", " z ", "r2"))


def test_unknown_or_missing_fields_do_not_fail() -> None:
    assert decision_lines({}) == []
    lines = decision_lines({"gate": {"text": {"decision": "veto", "reason": "new rule: x"}}})
    assert lines[1] == "    text: veto: new rule"
    quality = {"text": {"mae": 0.5, "copy_mae": 0.6, "corr": 0.8, "copy_corr": 0.7},
               "audio": {"mae": 0.6}}
    lines = quality_lines(quality)
    assert lines[2] == "    text: MAE 0.500 vs copy 0.600 (-16.7%, better); r 0.80 vs 0.70"
    assert len(lines) == 3 and all(len("      " + line) <= 100 for line in lines)


def test_the_direction_of_each_correction_and_a_partial_push_are_told() -> None:
    direction = {"text": {"mucn_slope": -0.2, "final_slope": 0.25},
                 "audio": {"mucn_slope": -0.3, "final_slope": -0.28},
                 "vision": {"mucn_slope": 0.0, "final_slope": 0.0}}
    provenance = {"gate": GATE, "uncertainty": {"level": 0.9, **{m: {"mean_width": 1.2}
                                                                 for m in MODALITIES}},
                  "consistency": {"strength": 0.5, "direction": direction}}
    lines = decision_lines(provenance)
    assert lines[1].strip().startswith("text: corrected (away from 0): ")
    assert lines[2].strip().startswith("audio: corrected 50% (toward 0): ")
    assert lines[3].strip().startswith("vision: kept at y_M (copy): ")  # copy: no direction
    assert "50% strength" in lines[4]
    assert all(len("      " + line) <= 100 for line in lines), lines


def test_a_summary_of_the_other_two_reads_as_an_echo() -> None:
    gate = {**GATE, "vision": {"decision": "copy", "shrink": 0.0, "reason": "a summary of the "
                               "other two: they add only 0.090 of Var(y_M) beyond it"}}
    lines = decision_lines({"gate": gate})
    assert lines[3].strip() == "vision: kept at y_M (copy): it only echoes the other two"


def test_a_push_applied_in_full_needs_no_line() -> None:
    lines = decision_lines({"gate": GATE, "consistency": {"strength": 0.998}})
    assert not any("strength" in line for line in lines)
