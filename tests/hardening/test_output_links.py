"""`trainer run --out` never writes through a symbolic link planted in the run directory: a
dangling `report.md` or `best.pt` link used to get its target created, and with --resume an
existing target overwritten. Links are refused before any work, and the files written by name
are renamed into place, which replaces a link that appears later instead of following it."""

import subprocess
import sys
from pathlib import Path

import pytest

from mugcore.outputs import replace_file


def _trainer_run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    # The store does not exist: the --out check comes before anything is opened or loaded.
    return subprocess.run([sys.executable, "-m", "trainer.cli", "run", "--store",
                           str(out.parent / "no-store"), "--dataset", "1", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["report.md", "best.pt", "metrics.json", "seed_1"])
@pytest.mark.parametrize("dangling", [True, False])
def test_links_in_out_are_refused(tmp_path: Path, name: str, dangling: bool) -> None:
    out = tmp_path / "run"
    out.mkdir()
    target = tmp_path / "decoy"
    if not dangling:
        target.write_text("precious\n")
    (out / name).symlink_to(target)
    for extra in ((), ("--resume",), ("--force",)):
        r = _trainer_run(out, *extra)
        assert r.returncode == 2, r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert "symbolic link" in last and name in last, r.stderr
        assert "Traceback" not in r.stderr
    assert target.read_text() == "precious\n" if not dangling else not target.exists()


def test_a_link_inside_a_seed_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "seed_1").mkdir(parents=True)
    (out / "seed_1" / "last.pt").symlink_to(tmp_path / "decoy.pt")
    r = _trainer_run(out, "--resume")
    assert r.returncode == 2 and "last.pt" in r.stderr and "symbolic link" in r.stderr
    assert not (tmp_path / "decoy.pt").exists()


def test_replace_file_replaces_a_link_instead_of_following_it(tmp_path: Path) -> None:
    target = tmp_path / "decoy"
    target.write_text("precious\n")
    path = tmp_path / "report.md"
    path.symlink_to(target)  # planted after the check, before the write
    replace_file(path, lambda tmp: tmp.write_text("# Stage-3 training report\n"))
    assert not path.is_symlink() and path.read_text() == "# Stage-3 training report\n"
    assert target.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoy", "report.md"]
