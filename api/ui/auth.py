"""The explorer's read access: the API's read token, asked for once in a form and then kept in
an HttpOnly, SameSite=Strict cookie (never in a URL, never readable by page scripts)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from api.deps import READ_COOKIE, Credentials, SettingsDep, may_read, token_may_read
from api.ui.rendering import HtmlRoute, LoginNeeded, page

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)

COOKIE_MAX_AGE_S = 7 * 24 * 3600


async def ui_reader(request: Request, settings: SettingsDep, credentials: Credentials) -> None:
    """Pages show data only to a reader the API would serve; others get the login form."""
    if not may_read(request, settings, credentials):
        raise LoginNeeded


def _safe_next(target: str) -> str:
    """Only a path of this explorer: no other host, scheme or protocol-relative URL."""
    ok = target.startswith("/ui") and not target.startswith("//") and "\\" not in target
    return target if ok else "/ui/"


@router.get("/login")
async def login_form(request: Request, settings: SettingsDep, next: str = "/ui/") -> Response:
    if settings.read_token is None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, "login.html", {"next": _safe_next(next), "wrong": False})


@router.post("/login")
async def login(request: Request, settings: SettingsDep,
                token: Annotated[str, Form(max_length=4096)],
                next: Annotated[str, Form(max_length=4096)] = "/ui/") -> Response:
    target = _safe_next(next)
    if not token_may_read(settings, token):
        return page(request, "login.html", {"next": target, "wrong": True}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(READ_COOKIE, token, max_age=COOKIE_MAX_AGE_S, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/", status_code=303)
    response.delete_cookie(READ_COOKIE, path="/", httponly=True, samesite="strict")
    return response
