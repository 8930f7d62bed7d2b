"""Typed dependencies: the settings, the store, and bearer-token checks for reads and writes.

All are `async def` although none awaits: they never block, and FastAPI would otherwise run
each sync dependency in the thread pool, a hop that costs more than the work itself."""

import secrets
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from api.errors import ApiError
from api.schemas import MAX_ID
from api.settings import Settings
from storage import LabelStore

# The explorer keeps the read token here (api.ui.auth); only reads accept it.
READ_COOKIE = "mug_read_token"
# auto_error=False: a missing header must give our 401 (FastAPI's own would be a 403).
_bearer = HTTPBearer(auto_error=False, description="MUG_WRITE_TOKEN, or MUG_READ_TOKEN for reads")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> LabelStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[LabelStore, Depends(get_store)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _matches(given: str, *tokens: SecretStr | None) -> bool:
    # compare_digest against every accepted token: timing says nothing about which came close.
    ok = False
    for token in tokens:
        if token is not None:
            ok |= secrets.compare_digest(given.encode(), token.get_secret_value().encode())
    return ok


def _unauthorized(token: str = "MUG_READ_TOKEN") -> ApiError:
    # Say how to pass one: a first-time client rarely knows the header's form.
    how = ("send the server's MUG_WRITE_TOKEN as the header 'Authorization: Bearer <token>'"
           if token == "MUG_WRITE_TOKEN" else
           "send the server's MUG_READ_TOKEN (or MUG_WRITE_TOKEN) as the header "
           "'Authorization: Bearer <token>', or enter it in the explorer's form at /ui/")
    return ApiError(401, f"missing or invalid bearer token: {how}", field="header.Authorization",
                    headers={"WWW-Authenticate": "Bearer"})


def may_read(request: Request, settings: Settings,
             credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Reads are open unless MUG_READ_TOKEN is set; the write token reads too. Without a header,
    the explorer's HttpOnly cookie serves as the token, so that its links to JSON work in a
    browser (SameSite=Strict: other sites' pages cannot make the browser send it)."""
    given = credentials.credentials if credentials else request.cookies.get(READ_COOKIE)
    return token_may_read(settings, given)


def token_may_read(settings: Settings, given: str | None) -> bool:
    if settings.read_token is None:
        return True
    return given is not None and _matches(given, settings.read_token, settings.write_token)


async def require_read(request: Request, settings: SettingsDep, credentials: Credentials) -> None:
    if not may_read(request, settings, credentials):
        raise _unauthorized()


async def require_write(settings: SettingsDep, credentials: Credentials) -> None:
    """Writes need MUG_WRITE_TOKEN; without one the server only listens on loopback."""
    if settings.write_token is None:
        return
    if credentials is None or not _matches(credentials.credentials, settings.write_token):
        raise _unauthorized("MUG_WRITE_TOKEN")


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)


async def label_set_param(label_set: Annotated[str, Query(
        pattern=r"^(latest|[1-9][0-9]{0,18})$",
        description="label-set id, or 'latest' (the dataset's newest)")] = "latest",
) -> int | str:
    if label_set == "latest":
        return label_set
    value = int(label_set)
    if value > MAX_ID:
        raise ApiError(422, f"query.label_set: {value} is larger than any id",
                       field="query.label_set")
    return value


LabelSetDep = Annotated[int | str, Depends(label_set_param)]
