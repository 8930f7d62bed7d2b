"""Label-generation jobs: submit (202 + Location), show, list (in pages), cancel, log, delete."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from api.cursors import decode_cursor, encode_cursor
from api.deps import ReadAccess, StoreDep, WriteAccess
from api.schemas import MAX_ID, IdPath, IdQuery, JobList, JobLog, JobOptions, JobOut, JobStatus
from labelgen.service.worker import JOB_KIND, check_options
from storage import LabelStore
from storage.records import JobInfo

router = APIRouter(tags=["jobs"])

RETRY_AFTER_S = 2


def check_job_options(options: JobOptions) -> dict[str, Any]:
    """The canonical options of a job, or a 422 naming the bad option (before any work)."""
    return check_options(options.model_dump())


def submit_job(store: LabelStore, dataset_id: int, options: dict[str, Any],
               idempotency_key: str | None) -> JobInfo:
    return store.create_job(dataset_id, options, kind=JOB_KIND, idempotency_key=idempotency_key)


def job_out(job: JobInfo) -> dict[str, Any]:
    out = job.to_dict()
    out.pop("idempotency_key")  # a client secret of sorts: not shown to other readers
    return out


def _accepted(response: Response, job: JobInfo) -> dict[str, Any]:
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return job_out(job)


@router.post("/v1/datasets/{dataset_id}/jobs", status_code=202, response_model=JobOut,
             dependencies=[WriteAccess], operation_id="create_job",
             summary="Start label generation on a dataset",
             responses={409: {"description": "Idempotency-Key reused with another request"}})
def create_job(
    dataset_id: IdPath, body: JobOptions, store: StoreDep, response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200,
                                                  description="same key and body: same job")]
    = None,
) -> dict[str, Any]:
    job = submit_job(store, dataset_id, check_job_options(body), idempotency_key)
    return _accepted(response, job)


@router.get("/v1/jobs", response_model=JobList, dependencies=[ReadAccess],
            operation_id="list_jobs")
def list_jobs(
    store: StoreDep,
    status: Annotated[JobStatus | None, Query()] = None,
    dataset: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64, description="next_cursor of the "
                                        "previous page")] = None,
) -> dict[str, Any]:
    before = None if cursor is None else decode_cursor(cursor)
    # One more than asked for tells whether another page follows.
    jobs = store.list_jobs(status=status, dataset=dataset, limit=limit + 1, before=before)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return {"items": [job_out(j) for j in jobs],
            "next_cursor": encode_cursor(jobs[-1].id) if more else None}


@router.get("/v1/jobs/{job_id}", response_model=JobOut, dependencies=[ReadAccess],
            operation_id="get_job")
def get_job(job_id: IdPath, store: StoreDep, response: Response) -> dict[str, Any]:
    job = store.get_job(job_id)
    if job.status in ("queued", "running"):
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return job_out(job)


@router.post("/v1/jobs/{job_id}/cancel", status_code=202, response_model=JobOut,
             dependencies=[WriteAccess], operation_id="cancel_job",
             summary="Cancel a job: a queued one at once, a running one within seconds")
def cancel_job(job_id: IdPath, store: StoreDep, response: Response) -> dict[str, Any]:
    return _accepted(response, store.request_cancel(job_id))


@router.delete("/v1/jobs/{job_id}", status_code=204, dependencies=[WriteAccess],
               operation_id="delete_job", response_class=Response,
               summary="Delete a finished job and its log (409 while it is queued or running)")
def delete_job(job_id: IdPath, store: StoreDep) -> Response:
    store.delete_job(job_id)
    return Response(status_code=204)


@router.get("/v1/jobs/{job_id}/log", response_model=JobLog, dependencies=[ReadAccess],
            operation_id="get_job_log")
def get_job_log(job_id: IdPath, store: StoreDep,
                after: Annotated[int, Query(ge=0, le=MAX_ID,
                                            description="only lines with a larger id")] = 0,
                ) -> dict[str, Any]:
    lines = store.read_job_log(job_id, after=after)
    return {"job_id": job_id, "lines": [line.to_dict() for line in lines]}
