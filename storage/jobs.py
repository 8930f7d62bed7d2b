"""Jobs in the label store: creation with idempotency keys, atomic claiming, heartbeats,
cancellation, logs, and recovery of jobs whose worker died.

A claim is one short write transaction: `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (two
workers never get the same row, and neither waits for the other), `BEGIN IMMEDIATE` on SQLite
(one writer at a time), so a job runs once however many workers poll.
"""

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mugcore.errors import UserError
from storage.errors import Conflict, IdempotencyConflict, JobLost, NotFound
from storage.models import JOB_STATUSES, Dataset, Job, JobLog
from storage.records import JobInfo, JobLogLine, plain_json, utc, utcnow

FINAL_STATUSES = ("succeeded", "failed", "cancelled")


class JobsMixin:
    """Job methods of `LabelStore` (which provides the sessions and dataset look-up)."""

    backend: str

    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[Session]: ...
        def _write(self) -> AbstractContextManager[Session]: ...
        def _dataset_row(self, s: Session, dataset: str | int) -> Dataset: ...

    def create_job(self, dataset: str | int, options: Mapping[str, Any], *,
                   kind: str = "labelgen", idempotency_key: str | None = None) -> JobInfo:
        """Queue a job on `dataset`. Reusing an idempotency key with the same dataset, kind and
        options returns the job it created; with anything else it is an IdempotencyConflict."""
        options = plain_json(dict(options))
        try:
            return self._insert_job(dataset, options, kind, idempotency_key)
        except IntegrityError:
            # A concurrent request with the same key won the insert: answer as for that one.
            if idempotency_key is None:
                raise
            return self._insert_job(dataset, options, kind, idempotency_key)

    def _insert_job(self, dataset: str | int, options: dict[str, Any], kind: str,
                    idempotency_key: str | None) -> JobInfo:
        with self._write() as s:
            ds = self._dataset_row(s, dataset)
            if idempotency_key is not None:
                existing = s.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
                if existing is not None:
                    return _same_request(existing, ds.id, kind, options)
            job = Job(dataset_id=ds.id, kind=kind, status="queued", progress=0.0,
                      options=options, idempotency_key=idempotency_key, attempts=0,
                      cancel_requested=False, created_at=utcnow())
            s.add(job)
            s.flush()
            return _job_info(job)

    def claim_job(self, worker: str, *, kinds: tuple[str, ...] = ("labelgen",)) -> JobInfo | None:
        """Take the oldest queued job for `worker` (status running), or None if there is none."""
        with self._write() as s:
            stmt = (select(Job).where(Job.status == "queued", Job.kind.in_(kinds))
                    .order_by(Job.created_at, Job.id).limit(1))
            if self.backend == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            job = s.scalar(stmt)
            if job is None:
                return None
            now = utcnow()
            job.status, job.worker, job.attempts = "running", worker, job.attempts + 1
            job.started_at = job.heartbeat_at = now
            job.stage, job.progress, job.eta_s, job.error = None, 0.0, None, None
            s.add(JobLog(job_id=job.id, at=now,
                         text=f"claimed by worker {worker} (attempt {job.attempts})"))
            return _job_info(job)

    def _running(self, s: Session, job_id: int, worker: str | None) -> Job:
        stmt = select(Job).where(Job.id == job_id)
        if self.backend == "postgresql":
            stmt = stmt.with_for_update()
        job = s.scalar(stmt)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.status != "running" or (worker is not None and job.worker != worker):
            raise JobLost(f"job {job_id} is {job.status}"
                          + (f" (worker {job.worker})" if job.worker else "")
                          + (f"; {job.error}" if job.error else ""))
        return job

    def heartbeat(self, job_id: int, *, worker: str | None = None, stage: str | None = None,
                  progress: float | None = None, eta_s: float | None = None) -> bool:
        """Report that a running job is alive (and how far it got). Returns True when a cancel
        was requested. Raises JobLost if `worker` no longer holds the job."""
        if progress is not None and not 0.0 <= progress <= 1.0:
            raise UserError(f"progress {progress}: expected a fraction in [0, 1]")
        with self._write() as s:
            job = self._running(s, job_id, worker)
            job.heartbeat_at = utcnow()
            if stage is not None:
                job.stage = stage
            if progress is not None:
                job.progress = progress
            job.eta_s = eta_s
            return job.cancel_requested

    def finish_job(self, job_id: int, *, status: Literal["succeeded", "failed", "cancelled"],
                   error: str | None = None, label_set_id: int | None = None,
                   worker: str | None = None) -> JobInfo:
        """Close a running job. Raises JobLost if it is no longer running (under `worker`)."""
        if status not in FINAL_STATUSES:
            raise UserError(f"job status {status!r}: expected one of {', '.join(FINAL_STATUSES)}")
        with self._write() as s:
            job = self._running(s, job_id, worker)
            now = utcnow()
            job.status, job.error, job.finished_at = status, error, now
            job.label_set_id = label_set_id
            job.eta_s = 0.0 if status == "succeeded" else None
            if status == "succeeded":
                job.progress = 1.0
            s.add(JobLog(job_id=job.id, at=now,
                         text=status + (f": {error}" if error else "")
                         + (f" (label set {label_set_id})" if label_set_id else "")))
            return _job_info(job)

    def release_job(self, job_id: int, *, worker: str, reason: str) -> JobInfo:
        """Hand a running job back to the queue (a worker stopping on purpose), so that
        another worker can take it without waiting for the heartbeat to go stale; a job whose
        cancel was requested ends cancelled instead."""
        with self._write() as s:
            job = self._running(s, job_id, worker)
            now = utcnow()
            if job.cancel_requested:  # nobody is to run it again
                job.status, job.finished_at, job.eta_s = "cancelled", now, None
                s.add(JobLog(job_id=job.id, at=now, text=f"cancelled: worker {worker} stopped "
                             f"({reason}) after a cancel was requested"))
                return _job_info(job)
            job.status, job.worker, job.stage, job.progress, job.eta_s = (
                "queued", None, None, 0.0, None)
            s.add(JobLog(job_id=job.id, at=now, text=f"released by worker {worker}: {reason}"))
            return _job_info(job)

    def request_cancel(self, job_id: int) -> JobInfo:
        """Cancel a job: a queued one at once, a running one when its worker next looks
        (`heartbeat` / `is_cancel_requested`). Conflict for a job that already ended otherwise."""
        with self._write() as s:
            job = s.get(Job, job_id, with_for_update=self.backend == "postgresql")
            if job is None:
                raise NotFound(f"no job {job_id}")
            if job.status in ("succeeded", "failed"):
                raise Conflict(f"job {job_id} already {job.status}")
            if job.status == "queued":
                job.status, job.finished_at = "cancelled", utcnow()
                s.add(JobLog(job_id=job.id, at=job.finished_at, text="cancelled while queued"))
            elif job.status == "running" and not job.cancel_requested:
                job.cancel_requested = True
                s.add(JobLog(job_id=job.id, at=utcnow(), text="cancel requested"))
            return _job_info(job)

    def is_cancel_requested(self, job_id: int) -> bool:
        return self.get_job(job_id).cancel_requested

    def get_job(self, job_id: int) -> JobInfo:
        with self._read() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            return _job_info(job)

    def list_jobs(self, *, status: str | None = None, dataset: str | int | None = None,
                  limit: int | None = None, before: int | None = None) -> list[JobInfo]:
        """Jobs, newest first, optionally of one status and/or dataset, and only those with an
        id below `before` (pass the last id of a page for the next one)."""
        if status is not None and status not in JOB_STATUSES:
            raise UserError(f"job status {status!r}: expected one of {', '.join(JOB_STATUSES)}")
        with self._read() as s:
            stmt = select(Job).order_by(Job.id.desc()).limit(limit)
            if before is not None:
                stmt = stmt.where(Job.id < before)
            if status is not None:
                stmt = stmt.where(Job.status == status)
            if dataset is not None:
                stmt = stmt.where(Job.dataset_id == self._dataset_row(s, dataset).id)
            return [_job_info(j) for j in s.scalars(stmt)]

    def delete_job(self, job_id: int) -> None:
        """Delete a finished job and its log; Conflict while it is queued or running."""
        with self._write() as s:
            job = s.get(Job, job_id, with_for_update=self.backend == "postgresql")
            if job is None:
                raise NotFound(f"no job {job_id}")
            if job.status not in FINAL_STATUSES:
                raise Conflict(f"job {job_id} is {job.status}; cancel it first, or wait until "
                               "it ends")
            s.execute(delete(JobLog).where(JobLog.job_id == job_id))
            s.delete(job)

    def append_job_log(self, job_id: int, text: str) -> None:
        with self._write() as s:
            if s.get(Job, job_id) is None:
                raise NotFound(f"no job {job_id}")
            s.add(JobLog(job_id=job_id, at=utcnow(), text=text))

    def read_job_log(self, job_id: int, *, after: int = 0) -> list[JobLogLine]:
        """Log lines of a job with id > `after` (pass the last id seen to follow a log)."""
        with self._read() as s:
            if s.get(Job, job_id) is None:
                raise NotFound(f"no job {job_id}")
            rows = s.scalars(select(JobLog).where(JobLog.job_id == job_id, JobLog.id > after)
                             .order_by(JobLog.id))
            return [JobLogLine(id=r.id, at=utc(r.at), text=r.text) for r in rows]

    def requeue_stale(self, timeout_s: float, *, policy: Literal["requeue", "fail"] = "requeue",
                      max_attempts: int = 3) -> list[JobInfo]:
        """Recover running jobs whose worker sent no heartbeat for `timeout_s` seconds: queue
        them again (up to `max_attempts` runs in all) or fail them, with the reason logged. A
        job whose cancel was requested ends cancelled: a cancel is never lost."""
        if policy not in ("requeue", "fail"):
            raise UserError(f"stale-job policy {policy!r}: expected 'requeue' or 'fail'")
        now = utcnow()
        cutoff = now - timedelta(seconds=timeout_s)
        with self._write() as s:
            stmt = select(Job).where(Job.status == "running", Job.heartbeat_at < cutoff)
            if self.backend == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            jobs = list(s.scalars(stmt))
            for job in jobs:
                reason = (f"worker {job.worker} sent no heartbeat since "
                          f"{job.heartbeat_at.isoformat()}Z (timeout {timeout_s:g} s)")
                if job.cancel_requested:  # the cancel stands: the job must not run again
                    job.status, job.finished_at = "cancelled", now
                    s.add(JobLog(job_id=job.id, at=now, text=f"cancelled: {reason} after a "
                                 "cancel was requested"))
                elif policy == "requeue" and job.attempts < max_attempts:
                    job.status, job.worker, job.started_at = "queued", None, None
                    s.add(JobLog(job_id=job.id, at=now, text=f"requeued: {reason}"))
                else:
                    why = reason if policy == "fail" else f"{reason}; gave up after " \
                        f"{job.attempts} attempt(s)"
                    job.status, job.error, job.finished_at = "failed", why, now
                    s.add(JobLog(job_id=job.id, at=now, text=f"failed: {why}"))
            return [_job_info(j) for j in jobs]


def _same_request(job: Job, dataset_id: int, kind: str, options: dict[str, Any]) -> JobInfo:
    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    if job.dataset_id != dataset_id or job.kind != kind or canonical(job.options) != canonical(
            options):
        raise IdempotencyConflict(f"idempotency key {job.idempotency_key!r} was used for job "
                                  f"{job.id} with another dataset or other options")
    return _job_info(job)


def _job_info(job: Job) -> JobInfo:
    return JobInfo(id=job.id, kind=job.kind, dataset_id=job.dataset_id, status=job.status,
                   stage=job.stage, progress=job.progress, eta_s=job.eta_s, options=job.options,
                   error=job.error, idempotency_key=job.idempotency_key, worker=job.worker,
                   attempts=job.attempts, cancel_requested=job.cancel_requested,
                   label_set_id=job.label_set_id, created_at=utc(job.created_at),
                   started_at=utc(job.started_at), heartbeat_at=utc(job.heartbeat_at),
                   finished_at=utc(job.finished_at))
