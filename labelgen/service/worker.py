"""The job worker: claim label-generation jobs from a store and run stages 1-2 for each.

Each job runs in a child process (multiprocessing, spawn) so that a cancel can stop it at
once, a crash in torch cannot take the worker down, and its memory goes back when it ends.
The child only computes: it loads the dataset's features, calls `generate_labels` and sends
progress, log lines and the result through a pipe. The worker alone talks to the store: it
turns progress into heartbeats, watches for a cancel request, and publishes the label set.

Recovery: a worker that stops on purpose hands its job back to the queue. A job whose
worker died (even by SIGKILL) stays `running` with a heartbeat that stops; every worker
requeues (or fails, by policy) such stale jobs on a timer, busy or not, and a job whose cancel
was requested ends cancelled instead. The child notices a dead worker within a second and
exits, and it never writes to the store, so a killed worker leaves nothing half-done there.
"""

import contextlib
import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from labelgen.config import PRESETS, LabelgenConfig, default_preset, load_config
from mugcore.data.schema import MMSADataset
from mugcore.device import check_device, pick_device
from mugcore.errors import UserError
from mugcore.progress_display import duration
from mugcore.threads import apply_threads, resolve_threads
from storage import JobInfo, JobLost, LabelStore

log = logging.getLogger(__name__)

JOB_KIND = "labelgen"
# Canonical job options, as JSON, at most: every job listing carries them.
MAX_OPTIONS_BYTES = 16 * 1024
# How often a job's child checks that its worker is still alive.
_ORPHAN_CHECK_S = 0.5
# The job's `stage` column holds at most this many characters.
STAGE_CHARS = 64


class JobOptionsError(UserError):
    """A bad job option; `field` names it ("body.method", "query.set", ...)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_options(options: Mapping[str, Any], *, where: str = "body.") -> dict[str, Any]:
    """The canonical options of a job (method, preset, overrides, seed, device), checked up
    front so that a bad option is refused when the job is submitted, not when it runs. The
    device is checked against this machine: the API's, where its embedded worker runs, and
    the worker's again when it runs the job."""
    from labelgen.methods import METHODS

    unknown = set(options) - {"method", "preset", "overrides", "seed", "device"}
    if unknown:
        name = sorted(unknown)[0]
        raise JobOptionsError(f"{where}{name}: unknown job option", field=f"{where}{name}")
    method = options.get("method", "mug")
    if method not in METHODS:
        raise JobOptionsError(f"{where}method: unknown method {method!r}; choose one of "
                              f"{', '.join(METHODS)}", field=f"{where}method")
    preset = options.get("preset")
    if preset is not None and preset not in PRESETS:
        raise JobOptionsError(f"{where}preset: unknown preset {preset!r}; choose one of "
                              f"{', '.join(PRESETS)}", field=f"{where}preset")
    overrides = dict(options.get("overrides") or {})
    try:
        # Every preset has the same keys, so checking against one proves the overrides apply.
        load_config(preset=preset or "mosi", overrides=overrides)
    except UserError as exc:
        key = "set" if where == "query." else "overrides"
        raise JobOptionsError(f"{where}{key}: {exc}", field=f"{where}{key}") from exc
    seed = options.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise JobOptionsError(f"{where}seed: expected an integer in [0, 2^31), got {seed!r}",
                              field=f"{where}seed")
    device = options.get("device", "auto")
    try:
        check_device(device, flag=f"{where}device")
    except UserError as exc:
        raise JobOptionsError(str(exc), field=f"{where}device") from exc
    canonical = {"method": method, "preset": preset, "overrides": overrides, "seed": seed,
                 "device": device}
    size = len(json.dumps(canonical, default=str))  # YAML may give dates: sized, not stored
    if size > MAX_OPTIONS_BYTES:
        key = "set" if where == "query." else "overrides"
        raise JobOptionsError(f"{where}{key}: the job's options take {size} bytes as JSON, more "
                              f"than the {MAX_OPTIONS_BYTES} a job may carry",
                              field=f"{where}{key}")
    return canonical


def job_config(options: Mapping[str, Any], ds: MMSADataset, *,
               gpu: bool = False) -> tuple[LabelgenConfig, str]:
    """(config, a log line saying which preset and why): the job's preset, or the one
    `labelgen run` would choose for the dataset on this device."""
    preset, why = options.get("preset"), "the job's option"
    if not preset:
        preset, why = default_preset(ds.attrs, ds.label_bound, gpu=gpu)
    config = load_config(preset=preset, overrides=options.get("overrides") or {})
    return config, f"preset {preset} ({why})"


@dataclass(frozen=True)
class WorkerSettings:
    poll_s: float = 1.0  # idle wait between looks at the queue
    heartbeat_s: float = 0.5  # progress report and cancel check while a job runs
    stale_s: float = 120.0  # heartbeat age that marks a job's worker as dead
    stale_policy: str = "requeue"
    max_attempts: int = 3
    cancel_grace_s: float = 2.0  # time a cancelled child gets before it is killed
    once: bool = False  # run until the queue is empty, then return
    device: str = "auto"  # where jobs whose `device` option is auto run (mugcore.device)
    ranks: int = 1  # torch.distributed ranks per job (labelgen/service/ranks.py)


# ---------------------------------------------------------------------- child process

class _PipeLogHandler(logging.Handler):
    def __init__(self, send: Any) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self._send(("log", record.getMessage()))


def _exit_if_orphaned(worker_pid: int) -> None:
    while True:
        if os.getppid() != worker_pid:
            os._exit(3)  # the worker is gone: nobody would publish our result
        time.sleep(_ORPHAN_CHECK_S)


def thread_lock_for_bars() -> None:
    """Give tqdm a thread lock instead of its default multiprocessing one. That one is a named
    semaphore registered with the worker's resource tracker; a job's process stopped by a
    signal (a cancel, a stopping server) never unregisters it, and the tracker then warns of a
    "leaked semaphore" when the server stops. A job's bars are all drawn in one process."""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def _child_main(conn: Connection, stop: Any, features: str, options: dict[str, Any],
                worker_pid: int, device: str, ranks: int = 1) -> None:
    # The worker handles SIGINT (Ctrl-C on the terminal reaches the whole process group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    thread_lock_for_bars()
    threading.Thread(target=_exit_if_orphaned, args=(worker_pid,), daemon=True).start()
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    handler = _PipeLogHandler(send)
    for name in ("labelgen", "mugcore"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    from labelgen.generate import Cancelled, generate_labels
    from labelgen.progress import Estimate
    from labelgen.service.ranks import start_ranks
    from mugcore.data.io import load_dataset

    try:
        ds = load_dataset(features, validate=False)
        threads, why = resolve_threads(None, processes=ranks)  # cores shared by the ranks
        apply_threads(threads)
        config, preset_line = job_config(options, ds, gpu=pick_device(device).type == "cuda")
        for line in (preset_line, why):
            send(("log", line))

        def on_estimate(e: Estimate) -> None:
            extra = (f"; {duration(e.total_s + e.cross_fit_s)} if stage 1 is cross-fitted"
                     if e.cross_fit_s else "")
            send(("log", f"estimated total: {duration(e.total_s)} ({e.basis}){extra}"))

        def rank_failed(message: str) -> None:  # rank 0 would wait for it for ever
            send(("error", message))
            os._exit(1)

        run_on = start_ranks(ranks, device, features=features, method=options["method"],
                             config=config, seed=options["seed"], on_failure=rank_failed)
        result = generate_labels(
            ds, method=options["method"], config=config, seed=options["seed"],
            progress=lambda where, fraction, eta_s: send(("progress", where, fraction, eta_s)),
            should_stop=stop.is_set, device=run_on, on_estimate=on_estimate)
        send(("result", result))
    except Cancelled:
        send(("cancelled",))
    except UserError as exc:
        send(("error", str(exc)))
    except Exception as exc:
        send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        conn.close()


# ---------------------------------------------------------------------- worker

class Worker:
    """Claims jobs from `store` and runs them one at a time; `run()` until `stop()`."""

    def __init__(self, store: LabelStore, *, settings: WorkerSettings = WorkerSettings(),
                 name: str | None = None, parent_pid: int | None = None) -> None:
        self.store = store
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.parent_pid = parent_pid
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            self._stopping.set()  # the API server that started us is gone
        return self._stopping.is_set()

    def recover_stale(self) -> None:
        s = self.settings
        for job in self.store.requeue_stale(s.stale_s, policy=s.stale_policy,  # type: ignore[arg-type]
                                            max_attempts=s.max_attempts):
            log.warning("job %d had a dead worker (%s): now %s", job.id, job.worker or "?",
                        job.status)

    def _recover_periodically(self) -> None:
        # On a timer of its own, so that a worker busy with a long job still recovers a dead
        # worker's job within about stale_s, not only once its own job ends.
        period = min(self.settings.stale_s / 2, 30.0)
        while not self._stopping.wait(period) and not self.stopping:
            try:
                self.recover_stale()
            except Exception as exc:  # a locked or unreachable database: try again next time
                log.warning("stale-job recovery failed (%s: %s); retrying in %g s",
                            type(exc).__name__, exc, period)

    def run(self) -> int:
        """Serve jobs until stopped (or, with `once`, until the queue is empty)."""
        log.info("worker %s serving store %s", self.name, self.store.location)
        self.recover_stale()
        recovery = threading.Thread(target=self._recover_periodically, name="stale-recovery",
                                    daemon=True)
        recovery.start()
        try:
            while not self.stopping:
                job = self.store.claim_job(self.name, kinds=(JOB_KIND,))
                if job is None:
                    if self.settings.once:
                        break
                    self._stopping.wait(self.settings.poll_s)
                    continue
                self.run_job(job)
        finally:
            self._stopping.set()
            recovery.join()
        log.info("worker %s stopped", self.name)
        return 0

    def run_job(self, job: JobInfo) -> str:
        """Run one claimed job to its end; returns its final status (or 'abandoned' when the
        worker is stopping or lost the job: stale recovery then hands it on)."""
        log.info("job %d: %s on dataset %s", job.id, job.options.get("method"), job.dataset_id)
        assert job.dataset_id is not None, "a claimed labelgen job has a dataset"
        try:
            options = check_options(job.options)
            features = self.store.features_path(job.dataset_id)
        except UserError as exc:
            return self._finish(job, "failed", error=str(exc))
        ctx = mp.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        child = ctx.Process(target=_child_main, name=f"labelgen-job-{job.id}",
                            args=(sender, stop, str(features), options, os.getpid(),
                                  _job_device(options, self.settings), self.settings.ranks))
        child.start()
        sender.close()  # ours closed, so recv() sees EOF once the child is gone
        try:
            return self._supervise(job, options, child, receiver, stop)
        finally:
            _end_process(child, grace_s=0.0)
            receiver.close()

    def _supervise(self, job: JobInfo, options: dict[str, Any], child: Any,
                   receiver: Connection, stop: Any) -> str:
        s = self.settings
        stage, progress, eta = "starting", 0.0, None
        last_beat = float("-inf")
        cancel_deadline: float | None = None
        while True:
            message = None
            if receiver.poll(s.heartbeat_s):
                try:
                    message = receiver.recv()
                except EOFError:
                    return self._child_gone(job, child)
            if message is not None:
                kind = message[0]
                if kind == "progress":
                    # (where: "stage1 run 1/3 fold 2/3 epoch 4/15", fraction and ETA of the
                    # whole job); the log notes each new stage, not each epoch
                    where = str(message[1])[:STAGE_CHARS]
                    if where.split(" ")[0] != stage.split(" ")[0]:
                        self.store.append_job_log(job.id, f"stage {where.split(' ')[0]} started")
                    stage, progress, eta = where, min(max(float(message[2]), 0.0), 1.0), \
                        message[3]
                elif kind == "log":
                    self.store.append_job_log(job.id, message[1])
                elif kind == "result":
                    return self._publish(job, message[1])
                elif kind == "cancelled":
                    return self._finish(job, "cancelled")
                elif kind == "error":
                    if len(message) > 2:
                        # The traceback is for whoever runs the worker: server paths and code
                        # are none of a read-token holder's business, so not in the job log.
                        log.error("job %d failed:\n%s", job.id, message[2])
                    return self._finish(job, "failed", error=message[1])
            now = time.monotonic()
            if self.stopping:
                return self._abandon(job, child)
            if now - last_beat >= s.heartbeat_s:
                try:
                    cancel = self.store.heartbeat(job.id, worker=self.name, stage=stage,
                                                  progress=progress, eta_s=eta)
                except JobLost as exc:
                    log.warning("job %d: lost it (%s); stopping its process", job.id, exc)
                    _end_process(child, grace_s=0.0)
                    return "abandoned"
                last_beat = now
                if cancel and cancel_deadline is None:
                    log.info("job %d: cancel requested", job.id)
                    stop.set()
                    cancel_deadline = now + s.cancel_grace_s
            if cancel_deadline is not None and now >= cancel_deadline:
                _end_process(child, grace_s=0.0)
                return self._finish(job, "cancelled")
            if message is None and not child.is_alive() and not receiver.poll(0):
                return self._child_gone(job, child)

    def _abandon(self, job: JobInfo, child: Any) -> str:
        _end_process(child, grace_s=self.settings.cancel_grace_s)
        # JobLost: requeued as stale or cancelled meanwhile, so there is nothing to hand back.
        with contextlib.suppress(JobLost):
            self.store.release_job(job.id, worker=self.name, reason="the worker stopped")
        return "abandoned"

    def _child_gone(self, job: JobInfo, child: Any) -> str:
        if self.stopping:  # a signal to the whole process group reached the child first
            return self._abandon(job, child)
        child.join(5.0)
        return self._finish(job, "failed", error=f"the job's process died (exit code "
                            f"{child.exitcode}); out of memory?")

    def _publish(self, job: JobInfo, result: Any) -> str:
        try:
            # Still ours? A worker that lost the job must not publish over its successor.
            self.store.heartbeat(job.id, worker=self.name, stage="publishing", progress=1.0)
            # The dataset is in the store already, so this is publish_result less its
            # registration step (which would need the features loaded here too).
            label_set = self.store.publish_label_set(
                job.dataset_id, result.labels, method=result.provenance["method"],
                options=result.provenance["options"], seed=result.provenance["seed"],
                provenance=result.provenance, quality=result.quality or {})
        except JobLost as exc:
            log.warning("job %d: lost it before publishing (%s)", job.id, exc)
            return "abandoned"
        except UserError as exc:
            return self._finish(job, "failed", error=f"could not publish: {exc}")
        return self._finish(job, "succeeded", label_set_id=label_set.id)

    def _finish(self, job: JobInfo, status: str, *, error: str | None = None,
                label_set_id: int | None = None) -> str:
        try:
            self.store.finish_job(job.id, status=status, error=error,  # type: ignore[arg-type]
                                  label_set_id=label_set_id, worker=self.name)
        except JobLost as exc:
            log.warning("job %d: could not record %s (%s)", job.id, status, exc)
            return "abandoned"
        log.info("job %d: %s%s", job.id, status, f" ({error})" if error else "")
        return status


def _job_device(options: Mapping[str, Any], settings: WorkerSettings) -> str:
    """The job's own device, or the worker's for a job that leaves it to `auto`."""
    return options["device"] if options["device"] != "auto" else settings.device


def _end_process(child: Any, *, grace_s: float) -> None:
    """Stop `child`: wait `grace_s`, then SIGTERM, then SIGKILL."""
    if child.pid is None:
        return
    child.join(grace_s)
    if child.is_alive():
        child.terminate()
        child.join(1.0)
    if child.is_alive():
        child.kill()
        child.join()


def run_worker(location: str | os.PathLike, *, files: str | os.PathLike | None = None,
               settings: WorkerSettings = WorkerSettings(), parent_pid: int | None = None,
               log_level: str = "INFO") -> int:
    """Open the store and serve jobs until SIGTERM/SIGINT (the entry of worker processes)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with LabelStore.open(location, files=files) as store:
        worker = Worker(store, settings=settings, parent_pid=parent_pid)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: worker.stop())
        return worker.run()

