"""What every answer carries at the HTTP level, whatever route produced it.

- Security headers. Answers may hold what a read token protects: `Cache-Control: no-store`
  keeps them out of shared and browser caches. The explorer's pages (`/ui/`) also get a
  Content-Security-Policy naming no source outside this server (its pages use inline styles
  and no script from elsewhere), `X-Frame-Options: DENY` and `frame-ancestors 'none'` (no
  framing: clickjacking), and no Referer leaves them.
- HEAD. FastAPI's routes answer GET only, so HEAD was a 405 whose own `Allow` header listed
  HEAD. A HEAD is served as the GET it asks about, with the body dropped and the headers
  (Content-Length included) kept.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_PREFIX = "/ui"
COMMON = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
UI_ONLY = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
     b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class HttpEdgesMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        path = scope["path"]
        extra = COMMON + (UI_ONLY if path == UI_PREFIX or path.startswith(UI_PREFIX + "/")
                          else [])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The route's own choice wins (e.g. a cacheable download would say so).
                own = list(message.get("headers", []))
                kept = {k.lower() for k, _ in own}
                message = {**message, "headers": own + [(k, v) for k, v in extra
                                                        if k not in kept]}
            elif message["type"] == "http.response.body" and head:
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_with_headers)
