"""`mug-api`: the API server, with embedded job workers, in one command.

    mug-api --store DIR_OR_URL [--host H] [--port P] [--workers N]

Starts N job workers (default 1; 0 for none) as child processes, restarts any that dies,
and serves the API with uvicorn until SIGINT/SIGTERM, then stops the workers. Every option
also reads its MUG_* environment variable; the bearer tokens come only from there
(MUG_WRITE_TOKEN, MUG_READ_TOKEN), so that they never show in a process list.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# FastAPI, uvicorn, pydantic, SQLAlchemy and the worker load in main(), after the flags are
# parsed: `mug-api --help` needs none of them (about 1 s of imports on a busy machine).
if TYPE_CHECKING:
    from api.settings import Settings

log = logging.getLogger("api")

RESTART_DELAY_S = 2.0
# Bytes per second a request must arrive at, on average, once it has taken the read timeout.
MIN_REQUEST_RATE = 1024.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mug-api", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", metavar="DIR_OR_URL",
                   help="store directory (SQLite) or postgresql+psycopg:// URL (MUG_STORE; "
                        "default ./mug-store)")
    p.add_argument("--files", metavar="DIR", help="HDF5 file root of a PostgreSQL store "
                   "(MUG_FILES)")
    p.add_argument("--host", help="address to bind (MUG_HOST; default 127.0.0.1); any other "
                   "than loopback needs MUG_WRITE_TOKEN")
    p.add_argument("--port", type=int, help="port to bind (MUG_PORT; default 8000)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="embedded job workers (MUG_WORKERS; default 1; 0: run `labelgen "
                        "worker` elsewhere)")
    p.add_argument("--data-root", type=Path, metavar="DIR",
                   help="allow registering server-side dataset files inside DIR "
                        "(MUG_DATA_ROOT; default: off)")
    p.add_argument("--upload-dir", type=Path, metavar="DIR",
                   help="where uploads are streamed (MUG_UPLOAD_DIR; default STORE/uploads)")
    p.add_argument("--max-upload-bytes", type=int, metavar="N",
                   help="largest accepted upload (MUG_MAX_UPLOAD_BYTES; default 2 GiB)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"),
                   help="log level (MUG_LOG_LEVEL; default info)")
    return p


class WorkerPool:
    """The embedded workers: child processes, restarted when one dies, stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes: list[Any] = []
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def _spawn(self) -> Any:
        from labelgen.service.worker import run_worker

        s = self.settings
        process = mp.get_context("spawn").Process(
            target=run_worker, name="mug-worker",
            args=(s.store,), kwargs={"files": s.files, "settings": s.worker_settings(),
                                     "parent_pid": os.getpid(), "log_level": s.log_level})
        process.start()
        log.info("started job worker pid %d", process.pid)
        return process

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.settings.workers)]
        if self.processes:
            self._monitor = threading.Thread(target=self._watch, name="worker-monitor",
                                             daemon=True)
            self._monitor.start()

    def _watch(self) -> None:
        while not self._stopping.wait(RESTART_DELAY_S):
            for i, process in enumerate(self.processes):
                if not process.is_alive() and not self._stopping.is_set():
                    log.warning("job worker pid %d exited (code %s); starting another",
                                process.pid, process.exitcode)
                    self.processes[i] = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join()
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # the worker stops its job's process, then exits
        for process in self.processes:
            process.join(self.settings.cancel_grace_s + 10.0)
            if process.is_alive():
                process.kill()
                process.join()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import uvicorn

    from api.app import create_app
    from api.serving import guarded_h11
    from api.settings import load_settings
    from mugcore.errors import UserError
    from storage import LabelStore

    try:
        settings = load_settings(vars(args))
        settings.check_can_serve()
        # Create or upgrade the schema once, before the server and workers open the store.
        LabelStore.open(settings.store, files=settings.files).close()
    except UserError as exc:
        print(f"mug-api: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pool = WorkerPool(settings)
    pool.start()
    try:
        http = guarded_h11(idle_s=settings.read_timeout_s, grace_s=settings.read_timeout_s,
                           min_rate=MIN_REQUEST_RATE)
        config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                                log_level=settings.log_level, access_log=False, http=http)
        uvicorn.Server(config).run()
    finally:
        pool.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
