"""SigV4 verification: only requests signed with the emulator's credentials get in.

Both endpoints (SageMaker's and S3's) check a request in two steps, so that nothing
unsigned costs memory: :func:`admit` reads only the headers and query (a signature is
there, in the expected form, from a known key, dated within AWS's 15-minute window, or
a presigned URL not yet expired); :func:`verify` then recomputes the signature with
botocore's own signer over exactly what the client signed and compares it in constant
time. The payload's hash comes from ``X-Amz-Content-SHA256`` when the client sent one
(S3 always does, so S3 checks the signature before reading any body), else from the
body itself.

A refusal is a :class:`Refusal` of one :class:`Why`; each endpoint answers it in its own
protocol's words (see ``wire.py`` and ``s3_gate.py``).
"""

from __future__ import annotations

import calendar
import dataclasses
import enum
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from botocore.auth import (
    HmacV1QueryAuth,
    S3SigV4Auth,
    S3SigV4QueryAuth,
    SigV4Auth,
    SigV4QueryAuth,
)
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

SKEW_SECONDS = 15 * 60  # AWS refuses requests signed further from its clock than this
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,]+), ?SignedHeaders=(?P<signed>[^,]+),"
    r" ?Signature=(?P<sig>[0-9a-f]{64})"
)
_CREDENTIAL = re.compile(
    r"(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
)
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_SIGNERS = {  # (S3?, presigned?): botocore's signer for it
    (True, True): S3SigV4QueryAuth,
    (True, False): S3SigV4Auth,
    (False, True): SigV4QueryAuth,
    (False, False): SigV4Auth,
}


class Why(enum.Enum):
    """Why a request is refused."""

    MISSING = "missing"  # no signature at all
    MALFORMED = "malformed"  # a signature, not in SigV4's form
    UNKNOWN_KEY = "unknown key"
    EXPIRED = "expired"  # dated more than 15 minutes ago
    LAPSED = "lapsed"  # a presigned URL past its expiry
    EARLY = "early"  # dated more than 15 minutes ahead
    MISMATCH = "mismatch"  # the signature is not the one the key makes


class Refusal(Exception):
    """The request is not let in; ``message`` says why, in AWS's words where AWS has them."""

    def __init__(self, why: Why, message: str) -> None:
        super().__init__(message)
        self.why = why
        self.message = message


@dataclass(frozen=True, slots=True)
class Signature:
    """What a request claims: who signed it, when, over which headers."""

    key: str
    secret: str
    region: str
    service: str
    timestamp: str  # X-Amz-Date, e.g. 20261201T101010Z
    signed: tuple[str, ...]  # lower-case header names
    value: str  # hex (SigV4), base64 (SigV2)
    presigned: bool
    expires: int | None = None  # presigned URLs: until when (SigV2) or for how long (SigV4)
    v2: bool = False  # a SigV2 presigned URL (boto3's default for S3's generate_presigned_url)


def admit(
    headers: Mapping[str, str], url: str, secrets: Mapping[str, str], now: float | None = None
) -> Signature:
    """The request's signature if it may be verified: present, well formed, from a key in
    ``secrets`` (access key -> secret), and in time. Reads no body."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    if "X-Amz-Signature" in query:
        sig = _from_query(query)
    elif "AWSAccessKeyId" in query and "Signature" in query:
        sig = _from_v2_query(query)
    else:
        sig = _from_header(headers)
    secret = secrets.get(sig.key)
    if secret is None:
        raise Refusal(Why.UNKNOWN_KEY, "The security token included in the request is invalid.")
    _check_time(sig, time.time() if now is None else now)
    return dataclasses.replace(sig, secret=secret)


def claimed_service(headers: Mapping[str, str], url: str) -> str:
    """The service a request's credential scope names (``""``: none), for answering a
    refusal in that service's protocol before the signature is trusted."""
    scope = headers.get("Authorization", "") or urlsplit(url).query
    found = re.search(r"/([a-z0-9-]+)/aws4_request", scope)
    return found[1] if found else ""


def verify(
    sig: Signature, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
) -> None:
    """Raise a MISMATCH refusal unless ``sig`` is what its key makes of this request.
    ``body`` is needed only when the client sent no ``X-Amz-Content-SHA256``."""
    if sig.v2:
        return _verify_v2(sig, method, url, headers)
    signed = {name: headers.get(name, "") for name in sig.signed}
    if sig.presigned:
        parts = urlsplit(url)
        query = "&".join(p for p in parts.query.split("&") if not p.startswith("X-Amz-Signature="))
        url = urlunsplit(parts._replace(query=query))
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = sig.timestamp
    signer = _SIGNERS[sig.service == "s3", sig.presigned](
        Credentials(sig.key, sig.secret), sig.service, sig.region
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    _compare(expected, sig.value)


def _compare(expected: str, given: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Refusal(
            Why.MISMATCH,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.",
        )


class _V2Query(HmacV1QueryAuth):  # type: ignore[misc]
    """botocore's SigV2 presigner, with the URL's own expiry as its date."""

    def __init__(self, credentials: Credentials, expires: int) -> None:
        super().__init__(credentials, expires)
        self._at = str(expires)

    def _get_date(self) -> str:
        return self._at


def _verify_v2(sig: Signature, method: str, url: str, headers: Mapping[str, str]) -> None:
    parts = urlsplit(url)
    auth_params = ("AWSAccessKeyId=", "Signature=", "Expires=")
    query = "&".join(p for p in parts.query.split("&") if not p.startswith(auth_params))
    signed = HTTPHeaders()
    for name, value in headers.items():
        if name.lower() in ("content-md5", "content-type") or name.lower().startswith("x-amz-"):
            signed[name] = value
    assert sig.expires is not None
    signer = _V2Query(Credentials(sig.key, sig.secret), sig.expires)
    _compare(signer.get_signature(method, parts._replace(query=query), signed), sig.value)


def _from_header(headers: Mapping[str, str]) -> Signature:
    header = headers.get("Authorization", "")
    if not header:
        raise Refusal(Why.MISSING, "Missing Authentication Token")
    match = _AUTH.fullmatch(header.strip())
    credential = _CREDENTIAL.fullmatch(match["credential"]) if match else None
    timestamp = headers.get("X-Amz-Date", "")
    if match is None or credential is None or not _STAMP.fullmatch(timestamp):
        raise Refusal(Why.MALFORMED, "Authorization header is malformed.")
    if not timestamp.startswith(credential["date"]):
        raise Refusal(Why.MALFORMED, "The credential's date is not the request's date.")
    return _signature(credential, timestamp, match["signed"], match["sig"], presigned=False)


def _from_query(query: Mapping[str, str]) -> Signature:
    credential = _CREDENTIAL.fullmatch(query.get("X-Amz-Credential", ""))
    timestamp = query.get("X-Amz-Date", "")
    expires = query.get("X-Amz-Expires", "")
    if (
        query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256"
        or credential is None
        or not _STAMP.fullmatch(timestamp)
        or not timestamp.startswith(credential["date"])
        or not expires.isdigit()
        or not 1 <= int(expires) <= MAX_PRESIGN_SECONDS
        or not re.fullmatch(r"[0-9a-f]{64}", query.get("X-Amz-Signature", ""))
    ):
        raise Refusal(Why.MALFORMED, "The presigned URL's query parameters are malformed.")
    sig = _signature(
        credential,
        timestamp,
        query.get("X-Amz-SignedHeaders", "host"),
        query["X-Amz-Signature"],
        presigned=True,
    )
    return dataclasses.replace(sig, expires=int(expires))


def _from_v2_query(query: Mapping[str, str]) -> Signature:
    expires = query.get("Expires", "")
    if not expires.isdigit() or not query["Signature"]:
        raise Refusal(Why.MALFORMED, "The presigned URL's query parameters are malformed.")
    return Signature(
        query["AWSAccessKeyId"], "", "", "s3", "", (), query["Signature"], True, int(expires), True
    )


def _signature(
    credential: re.Match[str], timestamp: str, signed: str, value: str, *, presigned: bool
) -> Signature:
    names = tuple(name.strip().lower() for name in signed.split(";") if name.strip())
    if "host" not in names:
        raise Refusal(Why.MALFORMED, "The host header must be signed.")
    return Signature(
        credential["key"], "", credential["region"], credential["service"], timestamp, names,
        value, presigned,
    )  # fmt: skip


def _check_time(sig: Signature, now: float) -> None:
    if sig.v2:
        assert sig.expires is not None
        if now > sig.expires:
            raise Refusal(Why.LAPSED, "Request has expired")
        return
    signed = calendar.timegm(time.strptime(sig.timestamp, "%Y%m%dT%H%M%SZ"))
    if signed > now + SKEW_SECONDS:
        raise Refusal(
            Why.EARLY,
            f"Signature not yet current: {sig.timestamp} is still later than "
            f"{_stamp(now + SKEW_SECONDS)} ({_stamp(now)} + 15 min.)",
        )
    if sig.expires is not None:
        if now > signed + sig.expires:
            raise Refusal(Why.LAPSED, "Request has expired")
    elif signed < now - SKEW_SECONDS:
        raise Refusal(
            Why.EXPIRED,
            f"Signature expired: {sig.timestamp} is now earlier than "
            f"{_stamp(now - SKEW_SECONDS)} ({_stamp(now)} - 15 min.)",
        )


def _stamp(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))
