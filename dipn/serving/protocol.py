"""The HTTP/1.1 connection of a worker: uvicorn's h11 protocol with a deadline on request heads.

uvicorn closes an idle keep-alive connection after its keep-alive timeout, but any byte that
arrives cancels that timer, so a client that sends one header byte every few seconds holds a
connection (and its buffers) open forever; 800 of them stayed open for as long as they liked. Here
every request head (request line and headers) must be complete within ``header_timeout_s`` of
the moment the server starts waiting for it: when the connection opens, and again when the
previous response has been sent. A head that misses its deadline gets a 408 and the connection is
closed. The body has its own deadline, counted in the app (``app.BodyLimit``), so that it can be
answered with the endpoint's error body; the h11 receive buffer bounds the head's size
(``server.uvicorn_config``).
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_BODY = json.dumps({"error": "request_timeout",
                                "detail": "the request line and headers did not arrive in time"}).encode()


def bounded_h11(header_timeout_s: float) -> type[H11Protocol]:
    """The h11 protocol class with request heads bounded to ``header_timeout_s`` seconds."""

    class BoundedH11Protocol(H11Protocol):
        head_timeout_s = header_timeout_s

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_deadline: asyncio.TimerHandle | None = None
            self._waiting_after = None  # the request cycle (or None) after which a new head is awaited
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._head_deadline is not None and self.cycle is not self._waiting_after:
                self._cancel_head_deadline()  # a new request's head is in: the app has it

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                # The next head on this keep-alive connection (or the rest of a body the app did
                # not read, which h11 discards) must arrive in time too.
                self._await_head()

        def _await_head(self) -> None:
            self._cancel_head_deadline()
            self._waiting_after = self.cycle
            self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

        def _cancel_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._head_deadline = None
            if self.transport.is_closing() or self.cycle is not self._waiting_after:
                return
            if self.conn.our_state is h11.IDLE:  # no answer under way: say why the connection ends
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                                     % (len(HEAD_TIMEOUT_BODY), HEAD_TIMEOUT_BODY))
            self.transport.close()

    return BoundedH11Protocol
