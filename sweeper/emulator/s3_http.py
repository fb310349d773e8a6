"""HTTP/1.1 with keep-alive for the S3 child: moto's request handler, answering on one
connection for as long as its client keeps it.

Werkzeug's server closes every connection after its response, so each S3 call paid for
a new connection, a new thread and a 10 ms wait for stray body bytes (about 0.9 ms of
the child's CPU per request, and the thread start waits for the interpreter lock when
a wave of jobs uploads at once). Here a connection's thread serves request after
request. What werkzeug guards against by closing (the next request line read as the
end of a body the app left unread) is ruled out by keeping a connection only when the
app read the whole body its ``Content-Length`` announced; a chunked body, a length
that is not a number, or a body left unread (a refused upload) closes the connection
after the answer, as werkzeug did.

The environ is still moto's (:class:`MotoRequestHandler`: S3 metadata names with
underscores keep their spelling), so requests reach the gate and moto unchanged.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import IO, Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

IDLE_SECONDS = 120.0  # an idle kept connection is closed (clients close theirs sooner)
_NO_BODY = frozenset({204, 304})


class KeepAliveHandler(MotoRequestHandler):
    """Serves the WSGI app (``self.server.app``) on a persistent connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # an answer's head and body are not held back
    timeout = IDLE_SECONDS

    def run_wsgi(self) -> None:
        """One request: the app's answer, and whether the connection can take another."""
        environ = self.make_environ()
        body = _CountedBody.wrap(environ)
        answer = _Answer(self, environ["REQUEST_METHOD"] == "HEAD", body)
        try:
            chunks: Iterable[bytes] = self.server.app(environ, answer.start)
            try:
                for chunk in chunks:
                    answer.write(chunk)
                answer.finish()
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            self.close_connection = True
            self.server.log("error", "Error on request:\n%s", traceback.format_exc())
            if not answer.sent:
                answer.fail()
        if body is None or not body.whole:
            self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request."""

    def log_error(self, *args: Any) -> None:
        """No line for a kept connection closed when idle, or a malformed request (its
        client gets the answer)."""


class _CountedBody:
    """A request body of known length as the app reads it: whether all of it was read."""

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self._stream = stream
        self.left = length

    @classmethod
    def wrap(cls, environ: dict[str, Any]) -> _CountedBody | None:
        """Put a counted body in ``environ``; None where its end is not known (chunked,
        or a ``Content-Length`` that is not a number): not counted, never kept."""
        length = environ.get("CONTENT_LENGTH") or "0"
        if environ.get("wsgi.input_terminated") or not length.isdigit():
            return None
        body = cls(environ["wsgi.input"], int(length))
        environ["wsgi.input"] = body
        return body

    @property
    def whole(self) -> bool:
        return self.left == 0

    def read(self, size: int | None = -1) -> bytes:
        return self._counted(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._counted(self._stream.readline, size)

    def _counted(self, reader: Callable[[int], bytes], size: int | None) -> bytes:
        if size is None or size < 0 or size > self.left:
            size = self.left  # never past the body, into the next request
        data = reader(size) if size else b""
        self.left -= len(data)
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class _Answer:
    """The response of one request: its head sent with the first bytes of its body."""

    def __init__(self, handler: KeepAliveHandler, head_only: bool, body: _CountedBody | None):
        self._handler = handler
        self._head_only = head_only
        self._body = body
        self._status = ""
        self._headers: list[tuple[str, str]] = []
        self._chunked = False
        self.sent = False

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self._status, self._headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        data = self._framed(data) if self.sent else self._head(empty=False) + self._framed(data)
        if data:
            self._handler.wfile.write(data)

    def finish(self) -> None:
        """After the last chunk: the head if nothing was sent, the chunked body's end."""
        if not self.sent:
            self._handler.wfile.write(self._head(empty=True))
        elif self._chunked:
            self._handler.wfile.write(b"0\r\n\r\n")

    def fail(self) -> None:
        """A 500 for an app that raised before it answered."""
        self._status, self._headers = "500 Internal Server Error", []
        self._handler.wfile.write(self._head(empty=True))

    def _framed(self, data: bytes) -> bytes:
        if self._head_only or not data:
            return b""
        return b"%x\r\n%s\r\n" % (len(data), data) if self._chunked else data

    def _head(self, *, empty: bool) -> bytes:
        """The status line and headers; ``empty``: the whole body is empty."""
        handler, self.sent = self._handler, True
        code = int(self._status.split(None, 1)[0])
        names = {name.lower() for name, _ in self._headers}
        if "content-length" not in names and not self._head_only and code not in _NO_BODY:
            if empty:
                self._headers.append(("Content-Length", "0"))
            elif handler.request_version >= "HTTP/1.1":
                self._chunked = True
                self._headers.append(("Transfer-Encoding", "chunked"))
            else:
                handler.close_connection = True  # the end of the body is the connection's
        if self._body is None or not self._body.whole:
            handler.close_connection = True
        if handler.close_connection:
            self._headers.append(("Connection", "close"))
        lines = [f"{handler.protocol_version} {self._status}"]
        lines += [f"Server: {handler.version_string()}", f"Date: {handler.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in self._headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
