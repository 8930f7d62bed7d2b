"""`create_app(settings)`: the FastAPI application over one label store."""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, ui
from api.headers import HttpEdgesMiddleware
from api.limits import BodyLimitMiddleware
from api.routers import datasets, health, jobs, label_imports, label_sets, labels
from api.schemas import ErrorOut
from api.settings import Settings
from api.uploads import remove_stale_uploads
from storage import LabelStore

DESCRIPTION = """\
Uni-labels of MUG (Meta Uni-label Generation) for multimodal sentiment analysis.

POST a dataset (MMSA pickle or project HDF5), start label generation, follow the job, then
read the uni-labels of a clip or export a whole label set. Writes need the bearer token
MUG_WRITE_TOKEN; reads need MUG_READ_TOKEN when the server sets one. Every error is JSON
`{"detail": ..., "field": ...}`.
"""

# Documented on every operation so that clients (and schemathesis) know the error shape.
_ERRORS = {code: {"model": ErrorOut}
           for code in (400, 401, 403, 404, 409, 413, 415, 422, 503, 507)}


log = logging.getLogger(__name__)


def _check_files(store: LabelStore) -> None:
    try:
        for damage in store.find_damage(deep=True):
            log.error("store damaged: %s", damage)
    except Exception:  # a store closed under it at shutdown; /readyz checks again anyway
        log.debug("store check stopped", exc_info=True)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = LabelStore.open(settings.store, files=settings.files)
        upload_dir = settings.upload_dir or store.root / "uploads"
        upload_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_uploads(upload_dir)
        app.state.store = store
        # Hash every label file once, beside serving: /readyz then reports what it finds.
        threading.Thread(target=_check_files, args=(store,), name="store-check",
                         daemon=True).start()
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="MUG uni-label service", version="1", description=DESCRIPTION,
                  lifespan=lifespan, responses=_ERRORS)
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(HttpEdgesMiddleware)  # added last: outermost, so every answer has it
    errors.install(app)
    for module in (datasets, label_imports, jobs, labels, label_sets, health):
        app.include_router(module.router)
    app.include_router(ui.router)  # the label explorer's pages, under /ui/
    return app
