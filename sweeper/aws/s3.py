"""S3 for the orchestrator: code and input uploads, the default bucket, downloads.

One long-lived aiobotocore S3 client per sweep; every call goes through the retry
policy. The same code talks to AWS and to the emulator's S3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper.aws.retry import RetryPolicy
from sweeper.errors import BackendError, ConfigError

_MISSING = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/`` → (``bucket``, ``key/``)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ConfigError(f"not an S3 URI (s3://bucket/key): {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    """``join("s3://b/a/", "c", "d")`` → ``s3://b/a/c/d``."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def default_bucket(region: str, account: str) -> str:
    """The SageMaker SDK's default bucket name: ``sagemaker-<region>-<account>``."""
    return f"sagemaker-{region}-{account}"


class S3:
    """Idempotent S3 operations over one client. Task-safe."""

    def __init__(self, client: Any, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def exists(self, uri: str) -> bool:
        """Whether the object ``uri`` exists (HeadObject)."""
        bucket, key = split(uri)
        try:
            await self._retry.call(lambda: self._client.head_object(Bucket=bucket, Key=key))
        except BackendError as exc:
            if exc.code in _MISSING:
                return False
            raise
        return True

    async def put(self, uri: str, body: bytes | Path) -> None:
        bucket, key = split(uri)

        async def put() -> Any:
            if isinstance(body, bytes):
                return await self._client.put_object(Bucket=bucket, Key=key, Body=body)
            with body.open("rb") as f:
                return await self._client.put_object(Bucket=bucket, Key=key, Body=f)

        await self._retry.call(put)

    async def download(self, uri: str, path: Path) -> None:
        """Write the object ``uri`` to ``path`` (replacing it only once complete)."""
        bucket, key = split(uri)
        response = await self._retry.call(lambda: self._client.get_object(Bucket=bucket, Key=key))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        async with response["Body"] as stream:
            with partial.open("wb") as out:
                while chunk := await stream.read(1 << 20):
                    out.write(chunk)
        partial.replace(path)

    async def ensure_bucket(self, bucket: str, region: str) -> bool:
        """Create ``bucket`` in ``region`` unless it exists; True if it was created.

        As the SageMaker SDK does for its default bucket; a bucket that exists but
        belongs to another account is an error that says so.
        """
        try:
            await self._retry.call(lambda: self._client.head_bucket(Bucket=bucket))
            return False
        except BackendError as exc:
            if exc.code in ("403", "AccessDenied", "Forbidden"):
                raise ConfigError(
                    f"S3 bucket {bucket!r} exists but this account cannot use it; set"
                    " estimator.output_path to a bucket of yours"
                ) from exc
            if exc.code not in _MISSING:
                raise
        create: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._retry.call(lambda: self._client.create_bucket(**create))
        except BackendError as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # a concurrent orchestrator won
                raise
        return True


async def account_id(sts: Any, retry: RetryPolicy) -> str:
    """The caller's account (STS GetCallerIdentity)."""
    identity = await retry.call(lambda: sts.get_caller_identity())
    return str(identity["Account"])
