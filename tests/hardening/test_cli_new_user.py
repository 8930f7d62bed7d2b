"""The CLIs as a new user meets them (real `labelgen` and `trainer` processes): every output
is checked before any work starts, bad outputs are one line and exit 2, `trainer run` wants
--force to replace a run, read-only store commands create nothing, no Alembic chatter, and
names, presets and numbers agree with the API."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import pytest

from mugcore.data.schema import MMSADataset
from tests.trainer.conftest import DATASET, TINY

# A run this long would time the test out: only a check made before the work passes.
LONG = ["--method", "mug", "--set", "stage1.max_epochs=1000", "--set", "stage1.patience=1000",
        "--no-progress"]
LONG_FLOAT = re.compile(r"\d\.\d{10,}")


def _cli(tool: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", f"{tool}.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def labelgen(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return _cli("labelgen", *args, timeout=timeout)


def trainer(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return _cli("trainer", *args, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess, tool: str, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error: "), r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def unwritable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory nobody may create files in: sysfs refuses even root."""
    if os.geteuid() != 0:
        path = tmp_path_factory.mktemp("ro")
        path.chmod(0o500)
        return path
    try:
        tempfile.TemporaryFile(dir="/sys").close()
    except OSError:
        return Path("/sys")
    pytest.skip("no directory here refuses root's writes")


# --- 8: outputs checked before the work --------------------------------------------------

def test_run_checks_out_and_store_before_working(tiny_mosi_h5: Path, unwritable: Path,
                                                 tmp_path: Path) -> None:
    one_line_error(labelgen("run", "--data", tiny_mosi_h5, *LONG, "--out", unwritable / "x.csv"),
                   "labelgen", "--out", str(unwritable))
    ok = tmp_path / "labels.csv"
    for bad in (unwritable / "store", "postgresql://nobody@127.0.0.1:1/none", "http://x/y"):
        one_line_error(labelgen("run", "--data", tiny_mosi_h5, *LONG, "--out", ok, "--store", bad),
                       "labelgen", "store")
        assert not ok.exists(), "labels were written although the store was bad"


# --- 9: one line, not a traceback --------------------------------------------------------

def test_unwritable_and_existing_outputs_are_one_line(tiny_mosi_h5: Path, unwritable: Path,
                                                      tiny_mosi_pkl: Path, store_dir: Path,
                                                      tmp_path: Path) -> None:
    one_line_error(labelgen("synth", "--preset", "mosi", "--n-train", "8", "--n-valid", "4",
                            "--n-test", "4", "--out", unwritable / "s.h5"), "labelgen", "--out")
    one_line_error(labelgen("import", tiny_mosi_pkl, "--out", unwritable / "i.h5"),
                   "labelgen", "--out")
    one_line_error(labelgen("export", tiny_mosi_h5, "--out", unwritable / "e.pkl"),
                   "labelgen", "--out")
    labels = tmp_path / "labels.h5"
    r = labelgen("run", "--data", tiny_mosi_h5, "--method", "copy", "--out", labels)
    assert r.returncode == 0, r.stderr
    existing = tmp_path / "report-is-a-file"
    existing.write_text("mine")
    one_line_error(labelgen("report", labels, "--out", existing), "labelgen", "--out")
    assert existing.read_text() == "mine"
    one_line_error(labelgen("report", labels, "--out", unwritable / "rep"), "labelgen", "--out")
    one_line_error(trainer("run", "--store", store_dir, "--dataset", DATASET, *TINY,
                           "--out", unwritable / "run"), "trainer", "--out")


# --- 10: trainer run asks for --force ----------------------------------------------------

def test_trainer_run_needs_force_and_clears_the_old_run(store_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert trainer("run", "--store", store_dir, "--dataset", DATASET, *TINY,
                   "--out", out).returncode == 0
    assert (out / "seed_1").is_dir()
    before = (out / "metrics.json").read_bytes()
    one_line_error(trainer("run", "--store", store_dir, "--dataset", DATASET, *TINY, "--out", out),
                   "trainer", "--force")
    assert (out / "metrics.json").read_bytes() == before
    (out / "notes.txt").write_text("the user's own file")
    r = trainer("run", "--store", store_dir, "--dataset", DATASET, *TINY, "--seeds", "2",
                "--out", out, "--force")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not (out / "seed_1").exists() and (out / "seed_2").is_dir()
    assert json.loads((out / "metrics.json").read_text())["config"]["seeds"] == [2]
    assert (out / "notes.txt").read_text() == "the user's own file"


# --- 11: read-only store commands create nothing -----------------------------------------

def test_read_only_store_commands_need_an_existing_store(tmp_path: Path) -> None:
    typo = tmp_path / "mug-stor"
    for args in (("store", "ls"), ("store", "show", "x"), ("store", "rm", "x"),
                 ("labels", "clip$_$1")):
        one_line_error(labelgen(*args, "--store", typo), "labelgen", "no label store", str(typo))
        assert not typo.exists()


# --- 12: no chatter ----------------------------------------------------------------------

def test_store_commands_print_no_alembic_lines(store_dir: Path, tmp_path: Path,
                                               tiny_mosi_h5: Path) -> None:
    r = labelgen("store", "ls", "--store", store_dir)
    assert r.returncode == 0 and DATASET in r.stdout
    assert "alembic" not in r.stderr.lower() and "INFO" not in r.stderr, r.stderr
    r = labelgen("run", "--data", tiny_mosi_h5, "--method", "copy",
                 "--store", tmp_path / "new-store", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "alembic" not in r.stderr.lower(), r.stderr


def test_editable_install_shows_no_warning_box(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                        "build_meta.build_editable(sys.argv[1])", str(tmp_path)], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "*" * 40 not in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]


def test_make_install_says_what_it_does() -> None:
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(["make", "-n", "-B", "install"], cwd=root, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"echo .*install", r.stdout), r.stdout


# --- 13: consistency ---------------------------------------------------------------------

def test_run_accepts_preset_names_as_trainer_does(tiny_mosi_h5: Path, tmp_path: Path) -> None:
    out = tmp_path / "fast.csv"
    r = labelgen("run", "--data", tiny_mosi_h5, "--method", "copy", "--config", "fast",
                 "--out", out)
    assert r.returncode == 0, r.stderr
    one_line_error(labelgen("run", "--data", tiny_mosi_h5, "--method", "copy", "--config", "nope",
                            "--out", tmp_path / "n.csv"), "labelgen", "nope", "fast")


def test_labels_json_names_and_numbers_match_the_api(store_dir: Path, tiny_mosi: MMSADataset
                                                     ) -> None:
    clip = str(tiny_mosi.splits["test"]["id"][2])
    r = labelgen("labels", clip, "--store", store_dir)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert "label_set_id" in got and "label_set" not in got
    assert not LONG_FLOAT.search(r.stdout), r.stdout
    assert got["multimodal"] == float(str(tiny_mosi.splits["test"]["regression_labels"][2]))


def test_import_keeps_the_synthetic_mark(tmp_path: Path) -> None:
    pkl = tmp_path / "synth.pkl"
    assert labelgen("synth", "--preset", "mosi", "--n-train", "8", "--n-valid", "4",
                    "--n-test", "4", "--out", pkl).returncode == 0
    r = labelgen("import", pkl, "--out", tmp_path / "synth.h5")
    assert r.returncode == 0, r.stderr
    assert "SYNTHETIC" in r.stdout
    with h5py.File(tmp_path / "synth.h5", "r") as f:
        assert bool(f.attrs["synthetic"])
    r = labelgen("validate", pkl)
    assert r.returncode == 0 and "SYNTHETIC" in r.stdout


def test_eval_of_a_junk_checkpoint_is_a_plain_message(tmp_path: Path, tiny_mosi_h5: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint\n" * 10)
    line = one_line_error(trainer("eval", "--checkpoint", junk, "--data", tiny_mosi_h5), "trainer",
                          "--checkpoint", "not a trainer checkpoint")
    assert "(101)" not in line and "PytorchStreamReader" not in line, line
