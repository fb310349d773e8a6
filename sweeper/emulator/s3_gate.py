"""The door in front of the emulator's S3 (and STS): signed requests only, no CORS.

A WSGI middleware around moto's app, in the S3 child. Every request must carry a SigV4
signature (an ``Authorization`` header or a presigned URL) from one of the emulator's
keys, dated within 15 minutes: the signature is checked from the headers alone before
any body is read (S3 clients sign the body's hash into ``X-Amz-Content-SHA256``); a body
whose hash was signed is then read into a spooled file while it is hashed, and refused if
it does not match. STS requests (``GetCallerIdentity``) sign their small body directly.
Browsers get nothing: preflights are refused and no ``Access-Control-*`` header is sent.
Refusals are answered in S3's (or STS's) XML, with AWS's codes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any
from xml.sax.saxutils import escape

from moto.core.request import EnvironHeaders  # metadata names keep their underscores
from multidict import CIMultiDict

from sweeper.emulator import auth

MAX_UNHASHED_BODY = 64 * 1024  # STS bodies are a few hundred bytes
_SPOOL = 8 * 1024 * 1024  # a hashed body is kept in memory up to this size, then on disk
_CHUNK = 1024 * 1024
_DISCARD = 1024 * 1024  # a refused request's body is read and dropped up to this size
_HEX = re.compile(r"[0-9a-f]{64}")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

_S3_CODES = {  # (code, HTTP status) as S3 answers each refusal
    auth.Why.MISSING: ("AccessDenied", 403),
    auth.Why.MALFORMED: ("AuthorizationHeaderMalformed", 400),
    auth.Why.UNKNOWN_KEY: ("InvalidAccessKeyId", 403),
    auth.Why.EXPIRED: ("RequestTimeTooSkewed", 403),
    auth.Why.LAPSED: ("AccessDenied", 403),
    auth.Why.EARLY: ("RequestTimeTooSkewed", 403),
    auth.Why.MISMATCH: ("SignatureDoesNotMatch", 403),
}
_STS_CODES = {
    auth.Why.MISSING: ("MissingAuthenticationToken", 403),
    auth.Why.MALFORMED: ("IncompleteSignature", 400),
    auth.Why.UNKNOWN_KEY: ("InvalidClientTokenId", 403),
    auth.Why.EXPIRED: ("SignatureDoesNotMatch", 403),
    auth.Why.LAPSED: ("SignatureDoesNotMatch", 403),
    auth.Why.EARLY: ("SignatureDoesNotMatch", 403),
    auth.Why.MISMATCH: ("SignatureDoesNotMatch", 403),
}
_S3_MESSAGES = {
    auth.Why.MISSING: "Access Denied",
    auth.Why.UNKNOWN_KEY: "The AWS Access Key Id you provided does not exist in our records.",
    auth.Why.EXPIRED: "The difference between the request time and the current time is too large.",
    auth.Why.EARLY: "The difference between the request time and the current time is too large.",
}


class Gate:
    """Lets through to ``app`` only what :mod:`sweeper.emulator.auth` admits and verifies
    with ``secrets`` (access key -> secret key)."""

    def __init__(
        self, app: Callable[[Environ, StartResponse], Iterable[bytes]], secrets: Mapping[str, str]
    ) -> None:
        self.app = app
        self.secrets = dict(secrets)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "OPTIONS":
            return _answer(
                environ, start_response, 403, "AccessForbidden",
                "CORSResponse: This CORS request is not allowed.", sts=False,
            )  # fmt: skip
        headers = CIMultiDict(EnvironHeaders(environ).items())
        url = f"http://{environ.get('HTTP_HOST', '')}{environ.get('RAW_URI', '/')}"
        sts = auth.claimed_service(headers, url) == "sts"
        try:
            sig = auth.admit(headers, url, self.secrets)
            declared = headers.get("X-Amz-Content-SHA256", "")
            body = b"" if declared or sig.presigned else _small_body(environ)
            auth.verify(sig, environ["REQUEST_METHOD"], url, headers, body)
            if _HEX.fullmatch(declared) and not _hashed_body(environ, declared):
                return _answer(
                    environ, start_response, 400, "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    sts=False,
                )  # fmt: skip
        except auth.Refusal as refusal:
            code, status = (_STS_CODES if sts else _S3_CODES)[refusal.why]
            message = refusal.message if sts else _S3_MESSAGES.get(refusal.why, refusal.message)
            return _answer(environ, start_response, status, code, message, sts=sts)
        except _TooLarge:
            return _answer(
                environ, start_response, 413, "EntityTooLarge", "Request body too large", sts=sts
            )
        return self.app(environ, _without_cors(start_response))


class _TooLarge(Exception):
    pass


def _small_body(environ: Environ) -> bytes:
    """The body of a request that signs its body directly (STS), at most 64 KiB; the app
    reads it again from memory."""
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        if int(length) > MAX_UNHASHED_BODY:
            raise _TooLarge
        body: bytes = environ["wsgi.input"].read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked
        body = environ["wsgi.input"].read(MAX_UNHASHED_BODY + 1)
        if len(body) > MAX_UNHASHED_BODY:
            raise _TooLarge
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _hashed_body(environ: Environ, declared: str) -> bool:
    """Read the body into a spooled file while hashing it; hand that file to the app.
    Whether its SHA-256 is the one the client signed."""
    stream: IO[bytes] = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    left = int(length) if length.isdigit() else None
    if left is None and not environ.get("wsgi.input_terminated"):
        left = 0
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 (handed to the app)
    digest = hashlib.sha256()
    while left is None or left > 0:
        chunk = stream.read(_CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            break
        digest.update(chunk)
        spool.write(chunk)
        if left is not None:
            left -= len(chunk)
    spool.seek(0)
    environ["wsgi.input"] = spool
    return digest.hexdigest() == declared


def _without_cors(start_response: StartResponse) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        return start_response(status, kept, exc_info)

    return start


def _answer(
    environ: Environ,
    start_response: StartResponse,
    status: int,
    code: str,
    message: str,
    *,
    sts: bool,
) -> list[bytes]:
    """Answer a refusal; the body the client still sends is not read into memory."""
    _discard(environ)
    request_id = str(uuid.uuid4())
    error = f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
    if sts:
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"{error}</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:
        xml = f"<Error>{error}<RequestId>{request_id}</RequestId></Error>"
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml.encode()
    reason = {400: "Bad Request", 403: "Forbidden", 413: "Request Entity Too Large"}[status]
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(body))),
            ("x-amz-request-id", request_id),
        ],
    )
    return [body]


def _discard(environ: Environ) -> None:
    """Read and drop what is left of a small body, so its client reads the answer; stop
    reading a large one (its client may see the connection reset instead). The server
    would otherwise drain it 10 MB at a time on every refused connection at once."""
    stream = environ["wsgi.input"]
    if isinstance(stream, io.BytesIO) or hasattr(stream, "rollover"):
        return  # already read by the gate
    length = environ.get("CONTENT_LENGTH") or ""
    left = (
        int(length)
        if length.isdigit()
        else (_DISCARD if environ.get("wsgi.input_terminated") else 0)
    )
    while 0 < left <= _DISCARD:
        chunk = stream.read(min(left, 64 * 1024))
        if not chunk:
            return
        left -= len(chunk)
    if left > 0:
        with contextlib.suppress(OSError, KeyError):
            environ["werkzeug.socket"].shutdown(socket.SHUT_RD)
