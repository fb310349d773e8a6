"""The sweep's aiobotocore clients: TLS verification where there is TLS."""

from __future__ import annotations

from contextlib import AsyncExitStack

from sweeper.aws.clients import open_client


async def _verify(endpoint_url: str | None) -> object:
    async with AsyncExitStack() as stack:
        client = await open_client(
            stack, "sagemaker", region="us-east-1", endpoint_url=endpoint_url, credentials=None
        )
        return client._endpoint.http_session._verify


async def test_plain_http_endpoints_load_no_ca_bundle_and_tls_ones_verify() -> None:
    assert await _verify("http://127.0.0.1:8080") is False  # the emulator: no TLS
    assert await _verify("https://sagemaker.example.com") is not False
    assert await _verify(None) is not False  # AWS's own endpoint
