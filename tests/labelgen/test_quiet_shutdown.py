"""A job's process stopped by a signal leaves no semaphore behind: no "leaked semaphore"
warning from the resource tracker when `mug-api` (or `labelgen worker`) stops.

The worker starts each job in a spawned process; tqdm's default lock there is a named
multiprocessing semaphore registered with the worker's resource tracker, and a process ended
by SIGTERM never unregisters it. Checked with real processes, the same way: a spawned child
that draws a (disabled) bar, then is terminated."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = '''
import multiprocessing as mp, sys, time

def child(quiet, ready):
    if quiet:
        from labelgen.service.worker import thread_lock_for_bars
        thread_lock_for_bars()
    from tqdm import tqdm
    for _ in tqdm(range(3), disable=True):
        pass
    ready.set()
    time.sleep(300)

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    ready = ctx.Event()  # the parent's own semaphore, as the worker's stop event: cleaned up
    process = ctx.Process(target=child, args=(sys.argv[1] == "quiet", ready))
    process.start()
    assert ready.wait(240), "the child never started"
    process.terminate()
    process.join()
'''


def _stderr(script: Path, mode: str) -> str:
    proc = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                          cwd=REPO, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_a_terminated_job_process_leaks_no_semaphore(tmp_path: Path) -> None:
    script = tmp_path / "job_process.py"  # a file: spawn re-imports the main module
    script.write_text(SCRIPT)
    assert "leaked semaphore" in _stderr(script, "default")  # what the worker's children did
    assert "leaked semaphore" not in _stderr(script, "quiet")
