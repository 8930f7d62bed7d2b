"""Templates, filters and the route class of the explorer's pages.

`HtmlRoute` turns every error of a page (a bad query parameter, an unknown label set, a missing
read token) into an HTML page with the right status instead of the API's JSON body, and adds a
`Server-Timing` header with the time the handler took (what bench/bench_explorer.py reads).
"""

import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from api.deps import READ_COOKIE
from api.errors import ApiError
from mugcore.errors import UserError
from storage.errors import Conflict, NotFound

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class LoginNeeded(Exception):  # noqa: N818 -- a signal to show the login form, not a failure
    """The server wants a read token and the request brought none that is valid."""


def num(value: Any, digits: int = 3) -> str:
    """Numbers for people: floats to `digits` significant digits, trailing zeros kept (0.700
    beside 0.645, not 0.7), whole numbers beyond them without an exponent; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 10 ** digits:
            return f"{value:.0f}"
        return f"{value:#.{digits}g}".rstrip(".")  # '#' keeps zeros, and a bare '100.'
    return str(value)


def signed(value: float, digits: int = 3) -> str:
    """+1.234 / -0.500; adding 0.0 first turns a negative zero into +0.000."""
    return f"{value + 0.0:+.{digits}f}"


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys of a list of dicts, in first-seen order (the columns of its table)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def is_table(value: Any) -> bool:
    """A non-empty list of dicts: shown as a table, one row per dict."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h {m:02d}m" if hours else f"{m}m {s:02d}s" if m else f"{s}s"


templates.env.filters.update(num=num, signed=signed, columns_of=columns_of,
                             duration=duration,
                             segment=lambda s: quote(str(s), safe=""))
templates.env.tests["table"] = is_table
templates.env.globals.update(with_query=with_query, read_cookie=READ_COOKIE)


def page(request: Request, name: str, context: Mapping[str, Any], *,
         status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, name, dict(context), status_code=status_code)


def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginNeeded):
        return page(request, "login.html", {"next": next_of(request), "wrong": False},
                    status_code=401)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in list(first.get("loc", ()))[:2])
        status, detail = 422, f"{field}: {first.get('msg')}"
    elif isinstance(exc, ApiError):
        status, detail = exc.status, exc.detail
    elif isinstance(exc, NotFound):
        status, detail = 404, str(exc)
    elif isinstance(exc, Conflict):
        status, detail = 409, str(exc)
    elif isinstance(exc, UserError):
        status, detail = 400, str(exc)
    else:
        assert isinstance(exc, HTTPException)
        status, detail = exc.status_code, str(exc.detail)
    return page(request, "error.html", {"status": status, "detail": detail},
                status_code=status)


def next_of(request: Request) -> str:
    """Where to return after logging in: this page, path and query (never another host)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


class HtmlRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except (LoginNeeded, RequestValidationError, ApiError, UserError,
                    HTTPException) as exc:
                response = _error_page(request, exc)
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
            return response

        return route
