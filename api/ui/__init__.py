"""The label explorer: server-rendered pages under /ui/ (issue 12), sharing the API's read token.

`router` holds every page; templates live in `templates/`, plots are inline SVG (`svg`)."""

from fastapi import APIRouter

from api.ui import auth, compare, jobs, pages

router = APIRouter()
for module in (auth, pages, compare, jobs):
    router.include_router(module.router)
