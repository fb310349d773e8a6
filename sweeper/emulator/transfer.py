"""A job's data between S3 and its ``/opt/ml`` tree, moved as SageMaker's platform does.

Code (``sagemaker_submit_directory``) and ``S3Prefix`` channels are downloaded before
training, checkpoints are restored from ``CheckpointConfig.S3Uri`` at each container
start and mirrored back when it stops, and the model and output directories are
uploaded as ``<S3OutputPath>/<job>/output/{model,output}.tar.gz``.

An S3 error the request caused (no such bucket or key, access denied) fails the job
with ``ClientError`` as SageMaker does, and so does data that cannot be laid out: a code
archive that is not a tar, or has members outside its directory, absolute links or
device entries; an object whose key cannot be a file (a segment longer than a file name,
a key that is also another key's folder). A transport error, a full disk, are the
platform's fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import botocore.exceptions as bce

from sweeper.emulator.errors import AwsError, validation

# What a path the request chose can fail with (a full disk, a lost mount are ours).
_UNUSABLE_PATH = {errno.ENAMETOOLONG, errno.EEXIST, errno.EISDIR, errno.ENOTDIR}
_CACHE_BYTES = 64 << 20  # code archives up to this size are kept in memory
_SPOOL_BYTES = 16 << 20  # an archive to upload is packed in memory up to this size
_IGNORE = shutil.ignore_patterns(".sweeps", "__pycache__", ".git", ".venv", "*.pyc")


def split(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise validation(f"Not an S3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def relative(key: str, prefix: str) -> str | None:
    """Where ``key`` (matched by ``prefix``) lands in the target directory, or None if it
    cannot be a file there (``..``, empty segments, a folder marker)."""
    rest = key[len(prefix) :]
    if not prefix or prefix.endswith("/") or rest.startswith("/") or not rest:
        rel = rest.lstrip("/") or key.rsplit("/", 1)[-1]
    else:  # a prefix ending mid-name: keep the name, as the key's last segment
        rel = key[prefix.rfind("/") + 1 :]
    return rel if is_file_key(rel) else None


def is_file_key(key: str) -> bool:
    """Whether an S3 key can be a file below a directory: no ``..``, ``.`` or empty
    segment (which also rules out a leading or trailing ``/``)."""
    return not any(p in ("", ".", "..") for p in key.split("/"))


class Transfer:
    """S3 moves for jobs, over the emulator's long-lived S3 client. Task-safe."""

    def __init__(self, client: Any) -> None:
        self._s3 = client
        self._archives: dict[tuple[str, str], bytes] = {}

    async def fetch_code(self, source: str) -> Code:
        """The job's code from its submit directory: an S3 ``tar.gz`` (its bytes), or a
        local directory or tar (which the training toolkit accepts too); see :func:`lay_out`."""
        if source.startswith("s3://"):
            return Code(source, await self._archive(source))
        return Code(source)

    async def _archive(self, uri: str) -> bytes:
        """The object's bytes; a sweep's jobs share one archive, so it is kept by ETag
        (a HeadObject checks that it is still the same object)."""
        bucket, key = split(uri)
        head = await self._call(uri, self._s3.head_object(Bucket=bucket, Key=key))
        cached = self._archives.get((uri, head["ETag"]))
        if cached is not None:
            return cached
        response = await self._call(uri, self._s3.get_object(Bucket=bucket, Key=key))
        async with response["Body"] as body:
            data: bytes = await body.read()
        if len(data) <= _CACHE_BYTES:
            self._archives = {(uri, head["ETag"]): data}  # the latest only: one per sweep
        return data

    async def fetch_prefix(self, uri: str, dest: Path) -> int:
        """Download every object under ``uri`` (an S3 prefix) into ``dest``; return the count."""
        bucket, prefix = split(uri)
        count = 0
        async for obj in self._objects(bucket, prefix, uri):
            rel = relative(obj["Key"], prefix)
            if rel is None:
                continue
            await self._download(f"s3://{bucket}/{obj['Key']}", dest / rel)
            count += 1
        return count

    async def mirror(self, source: Path, uri: str) -> None:
        """Make the S3 prefix ``uri`` hold exactly the files under ``source``."""
        bucket, prefix = split(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        local = await asyncio.to_thread(_files, source)
        remote = [o["Key"] async for o in self._objects(bucket, prefix, uri)]
        for rel, path in sorted(local.items()):
            await self._upload(path, bucket, prefix + rel, uri)
        for key in remote:
            if key[len(prefix) :] not in local:
                await self._call(uri, self._s3.delete_object(Bucket=bucket, Key=key))

    async def upload_tars(self, items: list[tuple[Path, str]]) -> None:
        """Upload the contents of each directory as one ``tar.gz`` object at its URI:
        packed together off the event loop (in memory while small), sent at once."""
        with contextlib.ExitStack() as stack:
            archives = [
                stack.enter_context(tempfile.SpooledTemporaryFile(_SPOOL_BYTES)) for _ in items
            ]
            bodies = await asyncio.to_thread(_pack_all, [source for source, _ in items], archives)
            async with asyncio.TaskGroup() as tg:
                for body, (_, uri) in zip(bodies, items, strict=True):
                    bucket, key = split(uri)
                    tg.create_task(self._put(body, bucket, key, uri))

    async def _objects(self, bucket: str, prefix: str, uri: str) -> Any:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj
        except bce.ClientError as exc:
            raise _client_error(exc, uri) from exc

    async def _download(self, uri: str, path: Path) -> None:
        bucket, key = split(uri)
        response = await self._call(uri, self._s3.get_object(Bucket=bucket, Key=key))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = path.open("wb")
        except OSError as exc:
            if exc.errno not in _UNUSABLE_PATH:
                raise
            raise validation(
                f"S3 object {uri} cannot be a file in the job's directory: {exc.strerror}"
            ) from exc
        async with response["Body"] as body:
            with out:
                while chunk := await body.read(1 << 20):
                    out.write(chunk)

    async def _upload(self, path: Path, bucket: str, key: str, uri: str) -> None:
        with path.open("rb") as body:
            await self._put(body, bucket, key, uri)

    async def _put(self, body: IO[bytes] | bytes, bucket: str, key: str, uri: str) -> None:
        await self._call(uri, self._s3.put_object(Bucket=bucket, Key=key, Body=body))

    @staticmethod
    async def _call(uri: str, request: Any) -> Any:
        try:
            return await request
        except bce.ClientError as exc:
            raise _client_error(exc, uri) from exc


def _client_error(exc: bce.ClientError, uri: str) -> AwsError:
    err = exc.response.get("Error", {})
    code, message = err.get("Code", "S3Error"), err.get("Message", str(exc))
    return AwsError("ValidationException", f"S3 {code} for {uri}: {message}")


@dataclass(frozen=True, slots=True)
class Code:
    """A job's code as fetched: where it is (``sagemaker_submit_directory``, or ``""``
    for none) and, for an S3 archive, its bytes."""

    source: str
    archive: bytes | None = None


def lay_out(code: Code, dest: Path) -> None:
    """Fill the code directory ``dest`` (blocking)."""
    if code.archive is not None:
        _extract(io.BytesIO(code.archive), dest, code.source)
    elif code.source:
        _copy_local(Path(code.source), dest)


def _copy_local(source: Path, dest: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=_IGNORE)
    elif source.is_file() and tarfile.is_tarfile(source):
        _extract(source, dest, str(source))
    else:
        raise validation(f"sagemaker_submit_directory {str(source)!r} was not found")


def _files(source: Path) -> dict[str, Path]:
    return {p.relative_to(source).as_posix(): p for p in source.rglob("*") if p.is_file()}


def _extract(archive: Path | io.BytesIO, dest: Path, name: str) -> None:
    """Unpack a code archive; one that cannot be (not a tar, a member outside ``dest``,
    an absolute link, a device) is the request's fault: a validation error naming why."""
    try:
        with (
            tarfile.open(archive)
            if isinstance(archive, Path)
            else tarfile.open(fileobj=archive) as tar
        ):
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise validation(f"the code archive {name} cannot be extracted: {exc}") from exc
    except OSError as exc:
        if exc.errno not in _UNUSABLE_PATH:
            raise
        raise validation(f"the code archive {name} cannot be extracted: {exc}") from exc


def _pack_all(sources: Sequence[Path], archives: Sequence[IO[bytes]]) -> list[IO[bytes] | bytes]:
    """Pack each source into its archive; each body to send: the bytes of a small one
    (an HTTP client asks a file for its ``fileno``, which would move a spooled one to
    disk), the file of a large one."""
    bodies: list[IO[bytes] | bytes] = []
    for source, archive in zip(sources, archives, strict=True):
        _pack(source, archive)
        small = archive.seek(0, io.SEEK_END) <= _SPOOL_BYTES
        archive.seek(0)
        bodies.append(archive.read() if small else archive)
    return bodies


def _pack(source: Path, archive: IO[bytes]) -> None:
    """Write the contents of ``source`` into ``archive`` as a ``tar.gz``; rewind it."""
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        if source.is_dir():
            for item in sorted(source.iterdir()):
                tar.add(item, arcname=item.name)
    archive.seek(0)
