"""A read timeout for uvicorn's HTTP/1.1 connections.

uvicorn times out idle keep-alive connections, but nothing else: a client that opens a
connection and sends nothing, sends half of its headers, or trickles a body a byte at a time
holds its connection (and an upload's temp file) for as long as it likes, and a few hundred such
clients exhaust the server (slowloris). `guarded_h11(...)` is uvicorn's h11 protocol with one
timer per connection that closes it when, while the server waits for the client,

- nothing arrived for `idle_s` seconds (a connection that never sends a byte included), or
- the request so far arrived at under `min_rate` bytes per second on average, once it has
  taken longer than `grace_s` (headers trickled a byte at a time, a body sent the same way).

While the server itself holds off reading (flow control: the app is busy with the body it has)
or works on its answer, nothing is judged: the client is not the one waiting then.
"""

import asyncio
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

CHECK_EVERY_S = 1.0


class _GuardedH11(H11Protocol):
    idle_s: float
    min_rate: float
    grace_s: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard: asyncio.TimerHandle | None = None
        self._last_data = self._request_start = time.monotonic()
        self._request_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._last_data = self._request_start = time.monotonic()
        self._guard = self.loop.call_later(CHECK_EVERY_S, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self._mid_request():  # the first bytes of a new request
            self._request_start, self._request_bytes = now, 0
        self._last_data = now
        self._request_bytes += len(data)
        super().data_received(data)

    def _mid_request(self) -> bool:
        """A request begun (headers in part, or a body in progress) and not yet whole."""
        state = self.conn.their_state
        return state is h11.SEND_BODY or (state is h11.IDLE and bool(self.conn.trailing_data[0]))

    def _waiting_for_client(self) -> bool:
        if self.flow is not None and self.flow.read_paused:
            return False  # we hold off reading: the app has not caught up
        if self._mid_request():
            return True
        # No request under way and no answer owed: a connection that sends nothing.
        return self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE

    def _check(self) -> None:
        self._guard = None
        if self.transport is None or self.transport.is_closing():
            return
        now = time.monotonic()
        if self._waiting_for_client():
            took = now - self._request_start
            too_slow = (self._mid_request() and took > self.grace_s
                        and self._request_bytes / took < self.min_rate)
            if now - self._last_data > self.idle_s or too_slow:
                self.logger.info("closing a connection from %s: %s", self.client,
                                 "too slow" if too_slow else f"idle for {self.idle_s:g} s")
                self.transport.close()
                return
        self._guard = self.loop.call_later(CHECK_EVERY_S, self._check)


def guarded_h11(*, idle_s: float, min_rate: float, grace_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the read timeout above (pass as `uvicorn.Config(http=...)`)."""
    return type("GuardedH11", (_GuardedH11,), {"idle_s": idle_s, "min_rate": min_rate,
                                               "grace_s": grace_s})
