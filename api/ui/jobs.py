"""The explorer's job pages: status, stage, progress and ETA, refreshing while a job runs."""

from fastapi import APIRouter, Depends, Request, Response

from api.deps import StoreDep
from api.schemas import IdPath
from api.ui.auth import ui_reader
from api.ui.rendering import HtmlRoute, page

router = APIRouter(prefix="/ui/jobs", route_class=HtmlRoute, include_in_schema=False,
                   dependencies=[Depends(ui_reader)])

ACTIVE = ("queued", "running")
REFRESH_S = 2
LISTED_JOBS = 200


@router.get("")
def jobs_page(request: Request, store: StoreDep) -> Response:
    jobs = store.list_jobs(limit=LISTED_JOBS)
    names = {d.id: d.name for d in store.list_datasets()}
    return page(request, "jobs.html", {
        "jobs": jobs, "names": names, "limit": LISTED_JOBS,
        "refresh_s": REFRESH_S if any(j.status in ACTIVE for j in jobs) else None})


@router.get("/{job_id}")
def job_page(request: Request, job_id: IdPath, store: StoreDep) -> Response:
    job = store.get_job(job_id)
    return page(request, "job.html", {
        "job": job, "log": store.read_job_log(job_id),
        "refresh_s": REFRESH_S if job.status in ACTIVE else None})
