"""How the emulator's endpoint lets a request in and words its answer.

A request is let in when it is signed with a known key (the signature's form, key and
date are checked before its body is read), its body is within bounds
(:mod:`sweeper.emulator.bodies`), the signature matches the body, no fault is injected,
and its parameters are valid for the operation's botocore model. Answers are encoded in
the protocol the request came in (:class:`Protocol`).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

import cbor2
from aiohttp import web
from botocore.model import OperationModel

from sweeper.emulator import auth, bodies, validate
from sweeper.emulator.errors import AwsError


class Protocol(enum.Enum):
    """The protocols the endpoint speaks, by content type."""

    JSON_11 = "application/x-amz-json-1.1"  # SageMaker, CloudWatch Logs
    JSON_10 = "application/x-amz-json-1.0"  # CloudWatch, for clients that pick JSON
    CBOR = "application/cbor"  # CloudWatch (Smithy RPC v2 CBOR), what botocore picks
    REST_JSON = "application/json"  # sagemaker-metrics


class Door:
    """Admits requests on the emulator's event loop; counts nothing, owns no state but
    the body budget and the fault dice."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        throttle_rate: float = 0.0,
        internal_failure_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self._credentials = dict(credentials)
        self._throttle = throttle_rate
        self._internal = internal_failure_rate
        self._random = random.Random(seed)
        self._bodies = bodies.Bodies()

    async def params(
        self,
        request: web.Request,
        name: str,
        model: OperationModel | None,
        protocol: Protocol = Protocol.JSON_11,
    ) -> dict[str, Any]:
        """The request's parameters once it is signed, not faulted, and valid for
        ``model`` (None: an operation the emulator does not know, named ``name``), or an
        :class:`AwsError` in SageMaker's words. Timestamps come as epoch seconds."""
        url = str(request.url)
        try:
            signature = auth.admit(request.headers, url, self._credentials)
            body = await self._bodies.read(request)
            auth.verify(signature, request.method, url, request.headers, body)
        except auth.Refusal as refusal:
            raise refused(refusal) from None
        if model is None:
            raise AwsError("UnknownOperationException", f"Unknown operation {name}")
        self._inject_fault()
        params = decode(protocol, body)
        validate.check(model.input_shape, params)
        return params

    def _inject_fault(self) -> None:
        roll = self._random.random()
        if roll < self._throttle:
            raise AwsError("ThrottlingException", "Rate exceeded")
        if roll < self._throttle + self._internal:
            raise AwsError("InternalFailure", "An internal error occurred.", 500)


def decode(protocol: Protocol, body: bytes) -> dict[str, Any]:
    """A request body's parameters (an empty body: none); timestamps as epoch seconds."""
    if not body:
        return {}
    try:
        params = _plain(cbor2.loads(body)) if protocol is Protocol.CBOR else json.loads(body)
    except (ValueError, TypeError, OverflowError, cbor2.CBORError) as exc:
        raise AwsError("SerializationException", "The request body cannot be read") from exc
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "The request body is not an object")
    return params


def _plain(value: Any) -> Any:
    """CBOR's decoded values as JSON's: datetimes (tag 1) become epoch seconds."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def answer(
    protocol: Protocol, status: int, body: Mapping[str, Any], headers: Mapping[str, str] = {}
) -> web.Response:
    """An answer in ``protocol`` (a request id on every one, as AWS sends); datetimes in
    ``body`` are timestamps (CBOR tag 1, epoch seconds in JSON)."""
    extra = {"x-amzn-RequestId": str(uuid.uuid4()), **headers}
    if protocol is Protocol.CBOR:
        encoded = cbor2.dumps(body, datetime_as_timestamp=True)
        extra["smithy-protocol"] = "rpc-v2-cbor"
    else:
        encoded = json.dumps(body, default=_seconds).encode()
    return web.Response(status=status, body=encoded, content_type=protocol.value, headers=extra)


def _seconds(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")


_REFUSALS = {  # SageMaker's answers (JSON protocols), by reason
    auth.Why.MISSING: ("MissingAuthenticationTokenException", 403),
    auth.Why.MALFORMED: ("IncompleteSignatureException", 403),
    auth.Why.UNKNOWN_KEY: ("UnrecognizedClientException", 403),
    auth.Why.EXPIRED: ("InvalidSignatureException", 400),
    auth.Why.LAPSED: ("InvalidSignatureException", 403),
    auth.Why.EARLY: ("InvalidSignatureException", 400),
    auth.Why.MISMATCH: ("InvalidSignatureException", 403),
}


def refused(refusal: auth.Refusal) -> AwsError:
    """A refused signature as the JSON services answer it."""
    code, status = _REFUSALS[refusal.why]
    return AwsError(code, refusal.message, status)
