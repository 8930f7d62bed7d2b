"""Seed averaging of mug on small train splits (labelgen/trust/ensemble.py), tiny datasets."""

import numpy as np

from labelgen.config import load_config
from labelgen.generate import generate_labels
from labelgen.outputs import MethodOutput
from labelgen.trust.ensemble import SEED_STEP, average_outputs, run_seeds
from mugcore.data.schema import MODALITIES, MMSADataset


def test_run_seeds_only_below_the_threshold() -> None:
    config = load_config(preset="fast")  # defaults: 3 runs under 600 train clips
    assert run_seeds(config, n_train=240, seed=4) == [4, 4 + SEED_STEP, 4 + 2 * SEED_STEP]
    assert run_seeds(config, n_train=600, seed=4) == [4]
    for off in ("selection.ensemble_seeds=1", "selection.enabled=false",
                "selection.ensemble_below=0"):
        assert run_seeds(load_config(preset="fast", overrides=[off]), n_train=240,
                         seed=4) == [4], off


def test_small_split_labels_are_the_mean_of_the_runs(tiny_mosi: MMSADataset,
                                                     tiny_overrides: list[str]) -> None:
    # without the gate, which on 48 clips sends every modality to copy (y_M in every run)
    two = load_config(preset="fast", overrides=[*tiny_overrides, "selection.ensemble_seeds=2",
                                                "gate.enabled=false"])
    one = load_config(preset="fast", overrides=[*tiny_overrides, "selection.ensemble_seeds=1",
                                                "gate.enabled=false"])
    averaged = generate_labels(tiny_mosi, method="mug", config=two, seed=3)
    runs = [generate_labels(tiny_mosi, method="mug", config=one, seed=s)
            for s in (3, 3 + SEED_STEP)]
    for m in MODALITIES:
        expected = np.mean([r.labels[m] for r in runs], axis=0)
        np.testing.assert_allclose(averaged.labels[m], expected, atol=1e-6)
        lower, upper = averaged.labels[f"{m}_lower"], averaged.labels[f"{m}_upper"]
        assert (lower <= averaged.labels[m] + 1e-6).all()
        assert (averaged.labels[m] <= upper + 1e-6).all()
        np.testing.assert_allclose(lower, np.mean([r.labels[f"{m}_lower"] for r in runs], 0),
                                   atol=1e-6)
    assert all(not np.array_equal(runs[0].labels[m], runs[1].labels[m]) for m in MODALITIES)
    p = averaged.provenance
    assert p["ensemble"]["seeds"] == [3, 3 + SEED_STEP]
    assert "train split of 48 clips" in p["ensemble"]["reason"]
    for m in MODALITIES:
        assert [run["noise"][m] for run in p["ensemble"]["runs"]] == [
            r.provenance["selection"][m]["noise"] for r in runs]
        width = (averaged.labels[f"{m}_upper"] - averaged.labels[f"{m}_lower"]).mean()
        assert p["uncertainty"][m]["mean_width"] == round(float(width), 5)
    assert "ensemble" not in runs[0].provenance


def _output(labels: float, decision: str, shrink: float) -> MethodOutput:
    gate = {m: {"decision": decision, "shrink": shrink, "reason": f"{decision} because",
                "evidence": {"r2": 0.3}} for m in MODALITIES}
    return MethodOutput(labels={m: np.full(4, labels, np.float32) for m in MODALITIES},
                        provenance={"gate": gate, "selection": {m: {"noise": 0.2}
                                                                for m in MODALITIES}})


def test_gate_decisions_of_the_runs_become_one() -> None:
    out = average_outputs([_output(1.0, "correct", 1.0), _output(0.0, "copy", 0.0),
                           _output(2.0, "correct", 1.0)], [1, 2, 3], n_train=40, below=600)
    for m in MODALITIES:
        np.testing.assert_array_equal(out.labels[m], np.ones(4, np.float32))
        gate = out.provenance["gate"][m]
        assert gate["decision"] == "shrink" and gate["shrink"] == round(2 / 3, 4)
        assert gate["reason"].startswith("mean of 3 runs (correct, copy, correct)")
    agreed = average_outputs([_output(1.0, "copy", 0.0), _output(0.0, "copy", 0.0)], [1, 2],
                             n_train=40, below=600)
    assert agreed.provenance["gate"]["audio"]["decision"] == "copy"
    assert [r["gate"]["text"]["decision"] for r in agreed.provenance["ensemble"]["runs"]] == [
        "copy", "copy"]
