"""SigV4 verification: only requests signed with the emulator's credentials get in.

The signature is recomputed with botocore's own SigV4 signer over exactly the headers
the client signed, with the client's timestamp and credential scope, and compared in
constant time. Failures are answered as AWS answers them, with HTTP 403.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sweeper.emulator.errors import AwsError

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<signed>[^,]+),"
    r" ?Signature=(?P<sig>[0-9a-f]+)"
)


def verify(
    method: str, url: str, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str]
) -> None:
    """Raise a 403 AwsError unless the request carries a valid signature for ``secrets``
    (access key -> secret key)."""
    header = headers.get("Authorization", "")
    if not header:
        raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
    match = _AUTH.fullmatch(header.strip())
    timestamp = headers.get("X-Amz-Date", "")
    if match is None or not timestamp.startswith(match["date"]):
        raise AwsError("IncompleteSignatureException", "Authorization header is malformed.", 403)
    secret = secrets.get(match["key"])
    if secret is None:
        raise AwsError(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            403,
        )
    signed = match["signed"].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: headers.get(name, "") for name in signed}
    )
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(Credentials(match["key"], secret), match["service"], match["region"])
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["sig"]):
        raise AwsError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.",
            403,
        )
