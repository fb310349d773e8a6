"""Long-lived aiobotocore clients: one per service per sweep, all from one session."""

from __future__ import annotations

import functools
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from sweeper.aws import models
from sweeper.aws.retry import BOTOCORE_RETRIES


async def open_client(
    stack: AsyncExitStack,
    service: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """Create a client for ``service`` whose lifetime is ``stack``'s.

    ``credentials`` (access key, secret) are for the emulator only; for AWS the
    standard credential chain applies. The connection pool is sized for a sweep's
    concurrent creates and polls.
    """
    config = AioConfig(retries=BOTOCORE_RETRIES, max_pool_connections=32)
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if endpoint_url and endpoint_url.lower().startswith("http://"):
        # No TLS to verify (the emulator on loopback): no CA bundle to load and parse,
        # which each client otherwise does before its first request (tens of ms).
        kwargs["verify"] = False
    if credentials:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials
    return await stack.enter_async_context(_session().create_client(service, **kwargs))


@functools.cache
def _session() -> AioSession:
    """The process's one session: its clients share what it loads once (endpoint and
    retry tables, each service's model) where a session per client would load them all
    again (about 30 MB for a sweep's five clients). Its model files come from
    :func:`models.loader`, which the space file's checks have already used."""
    session = get_session()
    session.register_component("data_loader", models.loader())
    return session
