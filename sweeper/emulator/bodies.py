"""Request bodies on the SageMaker endpoint, read within a size and a memory bound.

SageMaker's API requests are small (a CreateTrainingJob at its field limits is well
under a megabyte), so a body over :data:`MAX_BODY` is refused from its
``Content-Length`` before a byte of it is read. Bodies being read together may hold at
most :data:`IN_FLIGHT` bytes: past that a request is answered ``ThrottlingException``
(which clients retry) instead of being buffered, so however many requests arrive at
once, bodies cost the emulator a bounded amount of memory.
"""

from __future__ import annotations

from aiohttp import web

from sweeper.emulator.errors import AwsError

MAX_BODY = 1024 * 1024
IN_FLIGHT = 32 * 1024 * 1024


class Bodies:
    """Reads request bodies; used on the emulator's event loop only."""

    def __init__(self, max_body: int = MAX_BODY, in_flight: int = IN_FLIGHT) -> None:
        self.max_body = max_body
        self.in_flight = in_flight
        self.reserved = 0

    async def read(self, request: web.Request) -> bytes:
        """The whole body, or an AwsError: too large (413), or too many at once."""
        size = request.content_length
        if size is not None and size > self.max_body:
            raise AwsError(
                "RequestEntityTooLarge",
                f"Request body of {size} bytes exceeds the limit of {self.max_body}",
                413,
            )
        reserve = self.max_body if size is None else size
        if self.reserved + reserve > self.in_flight:
            raise AwsError("ThrottlingException", "Rate exceeded")
        self.reserved += reserve
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise AwsError("RequestEntityTooLarge", "Request body exceeds the limit", 413) from exc
        finally:
            self.reserved -= reserve
