"""The HTTP/1.1 connection of a worker: uvicorn's httptools protocol with the request head bounded
in size and in time.

Size: httptools (llhttp) keeps a request's URL and each header until it is complete and sets no
limit, so a 20 MB header would be buffered whole. Here the request line and headers may not take
more than ``max_head_bytes`` (16 KiB): counted while they arrive (every byte received while the
head is incomplete) and once more exactly when it is complete (the URL and header bytes the
parser gave); over it, a plain 400 and the connection closed. (uvicorn's h11 protocol bounds its
receive buffer the same way, but its pure-Python parsing and response writing took about a third
of a score post's CPU under benchmarks/endpoint_load.py; httptools does both in C.)

Time: uvicorn closes an idle keep-alive connection after its keep-alive timeout, but any byte
that arrives cancels that timer, so a client that sends one header byte every few seconds held a
connection open forever (800 of them stayed open for as long as they liked). Here every request
head must be complete within ``header_timeout_s`` of the moment the server starts waiting for it:
when the connection opens, and again when the previous response has been sent. A head that
misses its deadline gets a 408 and the connection is closed. The body has its own deadline,
counted in the app (``app.BodyLimit``), so that it is answered with the endpoint's error body.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT_ANSWER = json.dumps({"error": "request_timeout",
                                  "detail": "the request line and headers did not arrive in time"}).encode()


class HeadTooLarge(Exception):
    """Raised in a parser callback: httptools turns it into a parser error, which uvicorn answers
    with a plain 400 and a closed connection."""


def bounded_httptools(header_timeout_s: float, max_head_bytes: int) -> type[HttpToolsProtocol]:
    """The httptools protocol class with request heads bounded to ``max_head_bytes`` and
    ``header_timeout_s`` seconds."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_deadline: asyncio.TimerHandle | None = None
            self._waiting_after = None  # the request cycle (or None) after which a new head is awaited
            self._in_head, self._head_bytes, self._parsed_bytes, self._message_ended = True, 0, 0, False
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._message_ended = False
            super().data_received(data)
            if self._head_deadline is not None and self.cycle is not self._waiting_after:
                self._cancel_head_deadline()  # a new request's head is in: the app has it
            # Still inside a head after this read: all of it was head (unless a message ended in it,
            # whose body tail it held), and the parser buffers it; bound that.
            if self._in_head and not self._message_ended and not self.transport.is_closing():
                self._head_bytes += len(data)
                if self._head_bytes > max_head_bytes:
                    self.send_400_response(f"request line and headers over {max_head_bytes} bytes")

        # Parser callbacks
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes, self._parsed_bytes = True, 0, 0

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._message_ended = True
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                # The next head on this keep-alive connection (or the rest of a body the app did
                # not read) must arrive in time too.
                self._await_head()

        def _count(self, size: int) -> None:
            self._parsed_bytes += size
            if self._parsed_bytes > max_head_bytes:
                raise HeadTooLarge

        def _await_head(self) -> None:
            self._cancel_head_deadline()
            self._waiting_after = self.cycle
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _cancel_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._head_deadline = None
            if self.transport.is_closing() or self.cycle is not self._waiting_after:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self._await_head()  # a pipelined request is still being answered: wait after it
                return
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(HEAD_TIMEOUT_ANSWER), HEAD_TIMEOUT_ANSWER))
            self.transport.close()

    return BoundedHttpToolsProtocol
