"""Issue 18 for `trainer run` on tiny data: --threads checked before any work, the estimate of
the whole run told after a few timed steps, the frozen-BERT default on a CPU said. No speed
is asserted here."""

from pathlib import Path

import pytest

from mugcore.threads import usable_cores
from tests.trainer.conftest import DATASET, TINY
from trainer.cli import main


def without(option: str) -> list[str]:
    """TINY's arguments less `option` and its value."""
    i = TINY.index(option)
    return TINY[:i] + TINY[i + 2:]


@pytest.mark.parametrize("threads", ["0", "-1", str(usable_cores() + 1)])
def test_bad_threads_is_a_one_line_error(store_dir: Path, tmp_path: Path, threads: str,
                                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["run", "--store", str(store_dir), "--dataset", DATASET, "--threads", threads,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--threads must be between 1 and" in err
    assert not out.exists()


def test_estimate_of_the_whole_run(store_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    args = without("--threads")  # the default threads
    assert main(["run", "--store", str(store_dir), "--dataset", DATASET, *args,
                 "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "thread(s) per process:" in err and "load" in err
    assert "estimated total: " in err and "at most 3 epochs x 1 seed(s)" in err


def test_no_config_on_a_cpu_freezes_bert(store_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    # no --config: the dataset's preset (mosi: BERT) with BERT frozen, and it says so
    args = without("--config")
    assert main(["run", "--store", str(store_dir), "--dataset", DATASET, *args, "--set", "epochs=1",
                 "--out", str(tmp_path / "out")]) == 0
    assert "with net.finetune_bert=false (no GPU: BERT frozen" in capsys.readouterr().err
