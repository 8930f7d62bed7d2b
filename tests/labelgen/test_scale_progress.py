"""Issue 18 on tiny data: progress that names stage, run, fold and epoch; the estimate told
before the long work; --threads checked; the default preset said; synth's MOSEI-size shapes.
No speed is asserted here."""

from pathlib import Path

import pytest

from labelgen.commands import run_command
from labelgen.config import LabelgenConfig, default_preset, load_config
from labelgen.generate import generate_labels
from labelgen.progress import Estimate
from labelgen.service.worker import job_config
from mugcore import progress_display
from mugcore.cli import build_parser, run_cli
from mugcore.data.schema import MMSADataset
from mugcore.data.synth import make_synthetic
from mugcore.errors import UserError
from mugcore.progress_display import Bar, tell_estimate
from mugcore.threads import resolve_threads, usable_cores
from tests.labelgen.conftest import TINY


def labelgen_run(*argv: str) -> int:
    return run_cli(build_parser("labelgen", "test", [run_command]), ["run", *argv])


def test_progress_names_stage_run_fold_epoch_and_the_estimate_comes_first(
        tiny_mosi: MMSADataset) -> None:
    # 2 seeds averaged, stage 1 cross-fitted in 2 folds: every part of a label shows up
    config = load_config(preset="fast", overrides=[
        *TINY, "stage1.cross_fit_folds=2", "selection.ensemble_below=1000",
        "selection.ensemble_seeds=2"])
    calls: list[tuple[str, float, float | None]] = []
    estimates: list[tuple[int, Estimate]] = []  # (progress calls before it, the estimate)
    generate_labels(tiny_mosi, method="mug", config=config, seed=0,
                    progress=lambda where, f, eta: calls.append((where, f, eta)),
                    on_estimate=lambda e: estimates.append((len(calls), e)))
    wheres = [w for w, _, _ in calls]
    assert "stage1 run 1/2 fold 1/2 epoch 1/2" in wheres
    assert "stage1 run 2/2 fold 2/2 epoch 2/2" in wheres
    assert any(w.startswith("stage2 run 2/2 epoch ") for w in wheres)
    firsts = [w.split(" ")[0] for w in wheres]
    assert firsts.index("stage2") > max(i for i, s in enumerate(firsts) if s == "stage1")
    # the estimate comes once, from timed stage-1 steps, before run 1's stage 1 is over
    (at, estimate), = estimates
    assert estimate.total_s > 0 and estimate.elapsed_s < estimate.total_s
    assert all(w.startswith("stage1") for w in wheres[:at])
    assert wheres[at].startswith("stage1 run 1/2")
    # from then on every report has an ETA for all that remains; the last says done
    assert all(eta is not None for _, _, eta in calls[at:])
    assert calls[-1][1:] == (1.0, 0.0)


def test_cli_says_preset_threads_and_estimate(tiny_mosi_h5: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "labels.csv"
    overrides = [a for o in TINY for a in ("--set", o)]
    assert labelgen_run("--data", str(tiny_mosi_h5), "--method", "mug", "--out", str(out),
                        "--threads", "1", "--no-progress", *overrides) == 0
    err = capsys.readouterr().err
    assert "preset mosi-cpu (the file says preset 'mosi'; no GPU: BERT frozen" in err
    assert "1 thread(s) per process (--threads)" in err
    assert "estimated total: " in err


@pytest.mark.parametrize("threads", ["0", "-2", str(usable_cores() + 1)])
def test_bad_threads_is_a_one_line_error(tiny_mosi_h5: Path, tmp_path: Path, threads: str,
                                         capsys: pytest.CaptureFixture) -> None:
    assert labelgen_run("--data", str(tiny_mosi_h5), "--method", "copy", "--out",
                        str(tmp_path / "x.csv"), "--threads", threads) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--threads must be between 1 and" in err
    assert not (tmp_path / "x.csv").exists()


def test_default_threads_never_exceed_the_cores() -> None:
    for processes in (1, 2, 64):
        n, why = resolve_threads(None, processes=processes)
        assert n >= 1 and (n * processes <= usable_cores() or n == 1) and "load" in why
    with pytest.raises(UserError, match="between 1 and"):
        resolve_threads(usable_cores(), processes=usable_cores() + 1)


def test_default_preset_freezes_bert_without_a_gpu() -> None:
    name, why = default_preset({"preset": "mosei"}, 3.0, gpu=False)
    assert name == "mosei-cpu" and "no GPU" in why
    assert default_preset({"preset": "mosei"}, 3.0, gpu=True)[0] == "mosei"
    assert default_preset({}, 1.0, gpu=False)[0] == "sims-cpu"
    config: LabelgenConfig = load_config(preset=name)
    assert config.stage1.net["finetune_bert"] is False
    assert config.stage1.max_epochs == load_config(preset="mosei").stage1.max_epochs


def test_synth_mosei_unaligned_has_the_real_shapes() -> None:
    ds = make_synthetic("mosei-unaligned", n_train=6, n_valid=4, n_test=4, seed=0)
    train = ds.splits["train"]
    assert train["text"].shape == (6, 50, 768)
    assert train["text_bert"].shape == (6, 3, 50)
    assert train["audio"].shape == (6, 500, 74)
    assert train["vision"].shape == (6, 500, 35)
    assert ds.attrs["preset"] == "mosei" and ds.attrs["synthetic"]
    assert all(i.startswith("synthetic_mosei_") for i in train["id"])


def test_above_an_hour_on_a_cpu_names_faster_choices(capsys: pytest.CaptureFixture) -> None:
    faster = ("--config fast", "a GPU (--device cuda)")
    tell_estimate(4000.0, gpu=False, basis="timed", faster=faster)
    err = capsys.readouterr().err
    assert "estimated total: 1 h 06 min (timed)" in err
    assert "warning: above an hour on a CPU. Faster: --config fast; a GPU" in err
    tell_estimate(4000.0, gpu=True, basis="timed", faster=faster)
    tell_estimate(600.0, gpu=False, basis="timed", faster=faster)
    assert "warning" not in capsys.readouterr().err


def test_a_job_gets_the_default_preset_and_says_so(tiny_mosi: MMSADataset) -> None:
    config, line = job_config({"method": "mug", "seed": 0}, tiny_mosi, gpu=False)
    assert config.preset == "mosi-cpu" and line.startswith("preset mosi-cpu (")
    config, line = job_config({"method": "mug", "preset": "fast"}, tiny_mosi, gpu=False)
    assert config.preset == "fast" and line == "preset fast (the job's option)"


def test_a_log_gets_a_plain_line_now_and_then(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    # no terminal: no bar (no carriage returns), a line every LOG_EVERY_S
    bar = Bar(enabled=True)
    bar.update("stage1 epoch 1/2", 0.1, None)
    monkeypatch.setattr(progress_display, "LOG_EVERY_S", 0.0)
    bar.update("stage1 fold 2/3 epoch 4/15", 0.42, 750.0)
    bar.close()
    err = capsys.readouterr().err
    assert err == "stage1 fold 2/3 epoch 4/15: 42%, 12 min 30 s left\n"
