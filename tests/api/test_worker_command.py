"""`labelgen worker --once`: runs the queued jobs of a store, then exits; bad settings give one
line naming the setting."""

import subprocess
import sys
from pathlib import Path

from mugcore.data.schema import MMSADataset
from storage import LabelStore

# The `worker` command on its own parser, as labelgen's CLI mounts it.
RUN = ("import sys; from mugcore.cli import build_parser, run_cli; "
       "from labelgen.commands import worker_command as w; "
       "sys.exit(run_cli(build_parser('labelgen', '', [w]), sys.argv[1:]))")


def test_worker_once_runs_queued_jobs(tmp_path: Path, tiny_sims: MMSADataset) -> None:
    store_dir = tmp_path / "store"
    with LabelStore.open(store_dir) as store:
        ds = store.register_dataset("w", tiny_sims, source_format="hdf5")
        ok = store.create_job(ds.id, {"method": "copy", "preset": None, "overrides": {},
                                      "seed": 0})
        bad = store.create_job(ds.id, {"method": "copy", "overrides": {"stage1.nope": 1}})
    r = subprocess.run([sys.executable, "-c", RUN, "worker", "--store", str(store_dir),
                        "--once", "--poll-s", "0.2"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    with LabelStore.open(store_dir) as store:
        done = store.get_job(ok.id)
        assert done.status == "succeeded" and done.label_set_id is not None
        labels = store.read_labels(done.label_set_id)
        assert len(labels["clip_id"]) == 80
        failed = store.get_job(bad.id)
        assert failed.status == "failed" and "stage1.nope" in failed.error


def test_worker_bad_setting_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", RUN, "worker", "--store", str(tmp_path / "s"),
                        "--stale-s", "-1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "job_stale_s" in r.stderr and "Traceback" not in r.stderr
