"""bench/bench_gpu.py's parts that need no GPU: it refuses a machine without CUDA in one line,
reads nvidia-smi's lines, and makes its table from a report."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench/ holds scripts, not an installed package

from bench import bench_gpu  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_refuses_without_cuda_in_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(REPO / "bench" / "bench_gpu.py"), "--workdir",
                        str(tmp_path / "w")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("bench_gpu: no CUDA device is available"), line
    assert not (tmp_path / "w").exists()  # refused before any work


def test_nvidia_smi_lines() -> None:
    assert bench_gpu.parse_smi_line("87, 40960\n") == (87.0, 40960.0)
    assert bench_gpu.parse_smi_line("[N/A], 12") is None
    assert bench_gpu.summarise_samples([(50.0, 10.0), (100.0, 30.0)]) == {
        "samples": 2, "util_mean_pct": 75.0, "util_max_pct": 100.0, "memory_used_max_mib": 30.0}
    assert bench_gpu.summarise_samples([], error="nvidia-smi: not found")["reason"] == (
        "nvidia-smi: not found")


def test_table_from_a_report() -> None:
    gpu = {"util_mean_pct": 61.0, "util_max_pct": 99.0}
    systems = {name: {"median_s_per_it": s, "peak_gpu_mb": 900.0, "gpu": gpu}
               for name, s in (("stage1", 0.04), ("stage3", 0.034), ("stage3_bf16", 0.03))}
    run = {"clips": [1284, 229, 686], "overrides": [], "wall_s": 95.0,
           "timings": {"stage1_s": 80.0, "stage2_s": 15.0}, "stage1_trainings": 4,
           "ensemble_runs": 1, "stage1_s_per_it": 0.041, "peak_gpu_mb": 2100, "gpu": gpu,
           "stage2_alone_s": {"cuda": 9.0, "cpu": 7.0}}
    report = {"iterations": {"systems": systems, "self_mm_left_out": "MMSA is not importable",
                             "ratios": {"stage1 / stage3, s per it": 0.04 / 0.034}},
              "mosi": run, "mosei": {"failed": "CUDA out of memory"}}
    lines = bench_gpu.table(report)
    assert "| stage1 | 0.0400 | 900 | 61.0 |" in lines
    assert "stage1 / stage3, s per it: 1.18 (goal <= 1.30)" in lines
    assert "Self-MM left out: MMSA is not importable" in lines
    assert any(line.startswith("| mosi | 1284/229/686 | 95.0 | 80.0 | 15.0 | 4 x 1 |")
               for line in lines)
    assert "| mosei | failed | | | | | | | |" in lines
    assert "mosi: stage 2 alone, GPU 9.0 s, CPU 7.0 s" in lines
    assert "mosi: wall 95.0 s (goal <= 180 s)" in lines


def test_labelgen_measurement_runs_on_the_cpu(tiny_mosi) -> None:  # noqa: ANN001
    from tests.labelgen.conftest import TINY

    overrides = [*TINY, "stage1.net.text_encoder=lstm", "stage2.min_steps=10",
                 "selection.ensemble_seeds=1"]
    out = bench_gpu.measure_labelgen(tiny_mosi, overrides, device="cpu",
                                     stage2_devices=("cpu",))
    assert out["clips"] == [48, 16, 16] and out["wall_s"] >= 0
    assert out["device"]["device"].startswith("cpu") and out["peak_gpu_mb"] is None
    assert out["stage1_trainings"] >= 1 and out["ensemble_runs"] == 1
    assert set(out["quality_train"]) == {"text", "audio", "vision"}
    assert set(out["stage2_alone_s"]) == {"cpu"}


def test_peer_children_take_a_device(tmp_path: Path, tiny_mosi_pkl: Path) -> None:
    """bench_peer's stage-1 child, as bench_gpu runs it, with --device (cpu here)."""
    r = subprocess.run([sys.executable, str(REPO / "bench" / "bench_peer.py"), "_child",
                        "stage1", "--data", str(tiny_mosi_pkl), "--iterations", "2", "--warmup",
                        "1", "--threads", "1", "--batch-size", "8", "--device", "cpu",
                        "--set", "stage1.net.text_encoder=lstm"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(out["seconds_per_iteration"]) == 2 and out["peak_gpu_mb"] is None


def test_uncapped_stage1_projection() -> None:
    from labelgen.config import load_config

    config = load_config(preset="mosi", overrides=["stage1.max_iterations=300"])
    runs = [{"train_seconds": 12.0}] * 3
    folded = {"runs": runs, "seconds_per_iteration": 0.04, "seconds": 45.0,
              "cross_fit": {"folds": 3}, "plain_run": {
                  "runs": [{"train_seconds": 12.0}], "seconds_per_iteration": 0.04,
                  "seconds": 14.0}}
    # 3 folds of 600 clips: 30 epochs x 19 steps each, the plain run 30 x 29; 9 s + 2 s besides
    expected = 3 * 30 * 19 * 0.04 + 9.0 + 30 * 29 * 0.04 + 2.0
    assert bench_gpu._uncapped_stage1(folded, config, 900) == round(expected, 1)
    assert bench_gpu._uncapped_stage1(folded, load_config(preset="mosi"), 900) is None


def test_iterations_part_keeps_going_past_a_failed_system(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    speed = {"stage1": 0.05, "stage1_bf16": 0.04, "stage3": 0.03, "self_mm": 0.09}
    calls = []

    def measure(name: str, peer: argparse.Namespace, *_: object) -> dict:
        system = name + ("_bf16" if peer.stage1_set or peer.stage3_set else "")
        calls.append(system)
        if system == "stage3_bf16":
            raise SystemExit("stage3 failed (exit 1)")
        return {"seconds_per_iteration": [speed[system]] * 3, "peak_rss_mb": 1.0,
                "peak_gpu_mb": 100.0}

    monkeypatch.setattr(bench_gpu.bench_peer, "measure", measure)
    monkeypatch.setattr(bench_gpu, "mosi_data", lambda workdir: tmp_path / "mosi.pkl")
    monkeypatch.setattr(bench_gpu, "peer_missing", lambda python: None)
    args = argparse.Namespace(iterations=3, warmup=1, rounds=2, workdir=tmp_path,
                              peer_python=sys.executable)
    report: dict = {}
    bench_gpu.part_iterations(args, report)
    it = report["iterations"]
    assert calls.count("stage3_bf16") == 1 and calls.count("stage1") == 2  # dropped after
    assert it["failed"] == {"stage3_bf16": "stage3 failed (exit 1)"}
    assert set(it["systems"]) == {"stage1", "stage1_bf16", "stage3", "self_mm"}
    assert it["ratios"]["stage1 / stage3, s per it"] == pytest.approx(0.05 / 0.03)
    assert it["ratios"]["stage3 / Self-MM, s per it"] == pytest.approx(0.03 / 0.09)
    assert "stage3 bf16 / fp32, s per it" not in it["ratios"]
    assert "stage3_bf16 failed: stage3 failed (exit 1)" in bench_gpu.table(report)
