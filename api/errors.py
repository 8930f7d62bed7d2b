"""Every error leaves the API as JSON `{"detail": ..., "field": ...}` with a 4xx status.

`field` names the part of the request at fault in the form FastAPI uses for validation
errors ("query.limit", "body.method", "header.Idempotency-Key", "file") or is null when no
single field is to blame. Only a bug gives a 5xx, and then without internals.
"""

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mugcore.errors import DatasetError, UnsafePickleError, UserError
from storage.errors import Conflict, DamagedStore, DiskFull, NotFound, is_disk_full

log = logging.getLogger(__name__)

DISK_FULL_DETAIL = "the server's disk is full; nothing was stored (try again once space is freed)"


class ApiError(Exception):
    """A 4xx the API itself decides on (as opposed to one raised by the store)."""

    def __init__(self, status: int, detail: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers


def error_body(detail: str, field: str | None, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "field": field, **extra}


def _field_of(error: dict[str, Any]) -> str:
    loc = list(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        return "body"  # its location is a character offset, not a field
    # Past a parameter's name, pydantic adds union branches ("int", "literal['latest']"):
    # they name no field. Body locations are paths into the JSON and are kept whole.
    parts = loc if loc and loc[0] == "body" else loc[:2]
    return ".".join(str(part) for part in parts)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field_of(first)
    detail = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    # `input` may hold bytes or other non-JSON values; the messages say enough.
    problems = [{"field": _field_of(e), "problem": str(e.get("msg"))}
                for e in errors]
    return JSONResponse(jsonable_encoder(error_body(detail, field or None, errors=problems)),
                        status_code=422)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.detail, exc.field), status_code=exc.status,
                        headers=exc.headers)


def _user_error_status(exc: UserError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, DamagedStore):
        return 503  # the server's files, not the request: see /readyz, `labelgen store check`
    if isinstance(exc, DiskFull):
        return 507
    if isinstance(exc, DatasetError) or getattr(exc, "field", None):
        return 422  # a named field with a bad value: a validation error like FastAPI's own
    return 400


async def _user_error(_: Request, exc: UserError) -> JSONResponse:
    if isinstance(exc, DamagedStore | DiskFull):
        log.error("%s", exc)
    if isinstance(exc, DiskFull):  # its message may name the server's paths: said in the log
        exc = DiskFull(DISK_FULL_DETAIL)
    field = getattr(exc, "field", None)
    if isinstance(exc, DatasetError) and field is None:
        field = "file"
    extra: dict[str, Any] = {}
    if isinstance(exc, DatasetError) and not isinstance(exc, UnsafePickleError):
        extra["problems"] = exc.problems
    return JSONResponse(error_body(str(exc), field, **extra),
                        status_code=_user_error_status(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    field = None
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 401:
        field = "header.Authorization"
    if exc.status_code == 405:
        headers["Allow"] = _methods_of(request, headers.get("Allow", ""))
    return JSONResponse(error_body(str(exc.detail), field), status_code=exc.status_code,
                        headers=headers or None)


def _methods_of(request: Request, first: str) -> str:
    """Every method the API documents at this path. Starlette's own 405 (`first`) names only
    the methods of the first route whose path matched; HEAD goes with GET, as it serves it."""
    methods = {m.strip() for m in first.split(",") if m.strip()}
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)),
                        request.url.path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _os_error(request: Request, exc: OSError) -> JSONResponse:
    """A full disk met outside the store's own writes (an upload being streamed to disk)."""
    if is_disk_full(exc):
        # Whatever was being written has been removed by its writer (temp names, renamed
        # only when whole); the client may try again once space is freed.
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return await _user_error(request, DiskFull(DISK_FULL_DETAIL))
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal error; see the server log", None), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(UserError, _user_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OSError, _os_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
