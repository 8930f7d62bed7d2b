"""Jobs on both backends: idempotency, one claim per job under concurrent workers, heartbeats,
cancellation, logs, and recovery of jobs whose worker died."""

import multiprocessing
import time

import pytest

from mugcore.errors import UserError
from storage import Conflict, IdempotencyConflict, JobLost, LabelStore, NotFound
from storage.testing import clip_table, seeded_labels


@pytest.fixture
def store_with_ds(store, small_ds):
    store.register_dataset("mosi", small_ds, source_format="pickle")
    return store


def test_idempotency_key(store_with_ds):
    store = store_with_ds
    a = store.create_job("mosi", {"method": "mug", "seed": 1}, idempotency_key="k")
    b = store.create_job("mosi", {"seed": 1, "method": "mug"}, idempotency_key="k")
    assert a.id == b.id and a.status == "queued"
    with pytest.raises(IdempotencyConflict, match="'k' was used for job"):
        store.create_job("mosi", {"method": "copy"}, idempotency_key="k")
    assert store.create_job("mosi", {"method": "mug", "seed": 1}).id != a.id
    with pytest.raises(NotFound):
        store.create_job("nope", {})


def _claim_all(location: str, files: str | None, worker: str) -> list[int]:
    claimed = []
    with LabelStore.open(location, files=files) as store:
        while (job := store.claim_job(worker)) is not None:
            assert job.status == "running" and job.worker == worker
            claimed.append(job.id)
    return claimed


def test_each_job_is_claimed_once_by_concurrent_workers(spec, store_with_ds):
    ids = [store_with_ds.create_job("mosi", {"i": i}).id for i in range(60)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        per_worker = pool.starmap(_claim_all,
                                  [(spec.location, spec.files, f"w{i}") for i in range(4)])
    claimed = [job for jobs in per_worker for job in jobs]
    assert sorted(claimed) == sorted(ids)  # every job once: no double claims, none lost
    assert all(j.status == "running" and j.attempts == 1 for j in store_with_ds.list_jobs())
    assert store_with_ds.claim_job("late") is None


def test_progress_finish_and_logs(store_with_ds, small_ds):
    store = store_with_ds
    job = store.create_job("mosi", {"method": "copy"})
    assert store.claim_job("w1", kinds=("trainer",)) is None
    claimed = store.claim_job("w1")
    assert claimed.id == job.id and claimed.started_at is not None
    assert store.heartbeat(job.id, worker="w1", stage="pretrain", progress=0.4, eta_s=12) is False
    now = store.get_job(job.id)
    assert (now.stage, now.progress, now.eta_s) == ("pretrain", 0.4, 12)
    with pytest.raises(JobLost):
        store.heartbeat(job.id, worker="w2")
    with pytest.raises(UserError, match="fraction"):
        store.heartbeat(job.id, progress=1.5)
    store.append_job_log(job.id, "epoch 1 done")
    ls = store.publish_label_set("mosi", seeded_labels(clip_table(small_ds), seed=1),
                                 method="copy", options={}, seed=1)
    done = store.finish_job(job.id, status="succeeded", label_set_id=ls.id, worker="w1")
    assert (done.status, done.progress, done.label_set_id) == ("succeeded", 1.0, ls.id)
    assert done.finished_at >= done.started_at
    lines = store.read_job_log(job.id)
    assert [x.text for x in lines][1:] == ["epoch 1 done", f"succeeded (label set {ls.id})"]
    assert "claimed by worker w1" in lines[0].text
    assert [x.text for x in store.read_job_log(job.id, after=lines[1].id)] == [lines[2].text]
    with pytest.raises(JobLost, match="succeeded"):
        store.finish_job(job.id, status="failed", error="late")
    with pytest.raises(Conflict, match="already succeeded"):
        store.request_cancel(job.id)
    assert [j.id for j in store.list_jobs(status="succeeded", dataset="mosi")] == [job.id]


def test_cancel(store_with_ds):
    store = store_with_ds
    queued = store.create_job("mosi", {"n": 1})
    running = store.create_job("mosi", {"n": 2})
    assert store.claim_job("w").id == queued.id
    # Cancel the still-queued one at once, and ask the running one to stop.
    assert store.request_cancel(running.id).status == "cancelled"
    assert store.claim_job("w") is None
    assert store.request_cancel(queued.id).cancel_requested
    assert store.is_cancel_requested(queued.id)
    assert store.heartbeat(queued.id, stage="meta") is True
    assert store.finish_job(queued.id, status="cancelled").status == "cancelled"


def test_release_hands_a_job_back_at_once(store_with_ds):
    store = store_with_ds
    job = store.create_job("mosi", {})
    store.claim_job("w1")
    with pytest.raises(JobLost):
        store.release_job(job.id, worker="someone-else", reason="not mine")
    released = store.release_job(job.id, worker="w1", reason="the worker stopped")
    assert (released.status, released.worker) == ("queued", None)
    with pytest.raises(JobLost, match="queued"):
        store.heartbeat(job.id, worker="w1")
    again = store.claim_job("w2")
    assert (again.id, again.attempts) == (job.id, 2)
    assert any("released by worker w1" in line.text for line in store.read_job_log(job.id))


@pytest.mark.parametrize("policy", ["requeue", "fail"])
def test_jobs_of_dead_workers(store_with_ds, policy):
    store = store_with_ds
    job = store.create_job("mosi", {})
    store.claim_job("dead-worker")
    assert store.requeue_stale(60, policy=policy) == []  # fresh heartbeat: left alone
    time.sleep(0.3)
    [stale] = store.requeue_stale(0.2, policy=policy)
    if policy == "requeue":
        assert stale.status == "queued" and stale.worker is None
        with pytest.raises(JobLost, match="queued"):
            store.heartbeat(job.id, worker="dead-worker")
        again = store.claim_job("w2")
        assert (again.id, again.attempts) == (job.id, 2)
        assert "requeued: worker dead-worker sent no heartbeat" in store.read_job_log(job.id)[
            1].text
    else:
        assert stale.status == "failed" and "dead-worker sent no heartbeat" in stale.error


def test_requeue_gives_up_after_max_attempts(store_with_ds):
    store = store_with_ds
    job = store.create_job("mosi", {})
    for _ in range(2):
        store.claim_job("w")
        time.sleep(0.15)
        store.requeue_stale(0.1, max_attempts=2)
    final = store.get_job(job.id)
    assert final.status == "failed" and "gave up after 2 attempt(s)" in final.error
