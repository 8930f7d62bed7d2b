"""A cap on request bodies. Every request but a dataset upload (multipart, streamed to disk
under its own limit by `api.uploads`) may send at most `MAX_BODY_BYTES`: a JSON body the API
reads whole (job options, a dataset path) never needs more, and a larger one would be stored
in job records or held in memory. Bodies are counted as they arrive, Content-Length or not.
"""

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mugcore.ids import plain_int

MAX_BODY_BYTES = 64 * 1024
# Read (and drop) at most this much of an oversize body, so that a client that sends the
# whole body before it reads the answer (most do) sees the 413 instead of a reset connection.
DRAIN_LIMIT = 64 * 1024 * 1024
_BODYLESS = ("GET", "HEAD", "OPTIONS")


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k.lower() == name), None)


def _is_upload(scope: Scope) -> bool:
    content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    return (scope["method"] == "POST" and scope["path"].rstrip("/") == "/v1/datasets"
            and content_type == b"multipart/form-data")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS or _is_upload(scope):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (plain_int(declared.decode("latin-1")) or 0) > self.limit:
            await self._refuse(send)  # before a byte of the body is read
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > self.limit:
                while more and size < DRAIN_LIMIT:
                    message = await receive()
                    size += len(message.get("body", b""))
                    more = message.get("more_body", False) and message["type"] != \
                        "http.disconnect"
                await self._refuse(send)
                return
            chunks.append(message.get("body", b""))
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"body: larger than the limit of {self.limit} bytes",
                           "field": "body"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body read already, then waits for a disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replay
