"""Every retry decision of the AWS layer, in one place.

Layering (decided once, here):

* **botocore** (``standard`` mode, 3 attempts) retries a single HTTP request on
  connection errors, 5xx and throttling, with its own sub-second backoff. It is the
  transport layer and knows nothing about operations.
* **tenacity** (:class:`RetryPolicy`) retries a whole *operation* whose error botocore
  let through as transient, with longer exponential backoff and full jitter, on the
  injected clock. Worst case per call: ``3 * attempts`` requests.

The study's storage (:data:`STORAGE`) is retried by the same class, on its own errors
(a dropped connection, a database restart), for up to two minutes.

Nothing else in Sweeper retries AWS calls. Errors that can never succeed on retry
(ValidationException, ResourceInUse, ResourceNotFound, ResourceLimitExceeded) are
never retried by either layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import botocore.exceptions as bce
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from sweeper.errors import AccessError, BackendError, CapacityError, TransientError

T = TypeVar("T")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
CAPACITY_CODES = frozenset({"ResourceLimitExceeded"})
ACCESS_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "AccessDenied",
        "AccessDeniedException",
    }
)
_ACCESS_HINT = (
    "check the credentials the AWS chain finds (`aws sts get-caller-identity`) and their"
    " permissions; nothing was lost: run the same command again once fixed"
)
BOTOCORE_RETRIES = {"mode": "standard", "total_max_attempts": 3}


def classify(exc: BaseException) -> BaseException:
    """Map a botocore error to Sweeper's tree; anything else is returned unchanged."""
    if isinstance(exc, bce.ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "")), str(err.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in THROTTLING_CODES or status >= 500:
            return TransientError(f"{code or status}: {message}")
        if code in CAPACITY_CODES:
            return CapacityError(code, message)
        if code in ACCESS_CODES:
            return AccessError(f"AWS refused the request ({code}: {message}); {_ACCESS_HINT}")
        return BackendError(code, message)
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return AccessError(f"no AWS credentials found; {_ACCESS_HINT}")
    if isinstance(exc, bce.HTTPClientError | bce.ConnectionError):  # transport trouble
        return TransientError(str(exc))
    return exc


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Operation-level retries of transient errors: exponential backoff, full jitter.

    ``sleep`` is injected so tests run without real waiting. ``within`` bounds the
    retrying in seconds as well as ``attempts`` does; ``on_retry`` hears of each retry
    (the error, and how long until the next try).
    """

    attempts: int = 6
    initial: float = 1.0
    maximum: float = 30.0
    sleep: Callable[[float], Awaitable[None]] | None = None
    within: float | None = None
    on_retry: Callable[[BaseException, float], None] | None = None

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op``; retry it while it raises TransientError; raise mapped errors."""
        stop: stop_base = stop_after_attempt(self.attempts)
        if self.within is not None:
            stop = stop | stop_after_delay(self.within)
        retrying = AsyncRetrying(
            sleep=self.sleep or asyncio.sleep,
            stop=stop,
            before_sleep=self._heard,
            wait=wait_random_exponential(multiplier=self.initial, max=self.maximum),
            retry=retry_if_exception_type(TransientError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await op()
                except Exception as exc:
                    mapped = classify(exc)
                    if mapped is exc:
                        raise
                    raise mapped from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _heard(self, state: RetryCallState) -> None:
        if self.on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            wait = state.next_action.sleep if state.next_action else 0.0
            if error is not None:
                self.on_retry(error, wait)


# The study's storage: a database restart or a dropped connection is waited out for up
# to two minutes (attempts every 0.5 s at first, then every 8 s at most).
STORAGE = RetryPolicy(attempts=10_000, initial=0.5, maximum=8.0, within=120.0)
