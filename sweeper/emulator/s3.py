"""The emulator's S3: moto's S3 server in a child process on loopback, kept on disk.

Why a child process: moto keeps its state in module globals, so two emulators in one
process would share buckets; a child also keeps moto's imports off the emulator's loop.

Persistence: moto holds objects in memory. The child loads ``<root>/s3/<bucket>/<key>``
at start and writes changes back when its standard input closes. That happens when
the emulator stops *or dies* (even by SIGKILL: the pipe closes with the process), so
objects survive an emulator restart as they survive on S3. A lock on the directory
makes a new child wait until the old one has written everything. Ctrl-C in a terminal
reaches the whole process group; the child ignores it and waits for its pipe.

The endpoint also answers STS (``GetCallerIdentity``), which is how a sweep finds the
account for the SageMaker SDK's default bucket name. It checks no signatures: it is
reachable from this machine only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from sweeper.emulator.transfer import is_file_key

MANIFEST = ".manifest.json"  # bucket/key -> ETag of what is on disk
_STOP_SECONDS = 120.0  # time given to write the objects back


class S3Server:
    """Starts and stops the child. ``endpoint_url`` is set once :meth:`start` returns."""

    def __init__(self, root: Path, region: str) -> None:
        self.root = root
        self.region = region
        self.endpoint_url = ""
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        """Start the server; return its endpoint once it serves every stored object."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sweeper.emulator.s3",
            str(self.root),
            self.region,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = (await self._proc.stdout.readline()).decode().strip()
        if not line.startswith("http://"):
            await self._proc.wait()
            raise RuntimeError(
                f"the emulator's S3 server did not start (exit {self._proc.returncode})"
            )
        self.endpoint_url = line
        return line

    async def stop(self) -> None:
        """Close the pipe: the child writes its objects to disk and exits."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            async with asyncio.timeout(_STOP_SECONDS):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _client(endpoint: str, region: str) -> Any:
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


def load(client: Any, root: Path, region: str) -> dict[str, str]:
    """Create every bucket and object kept under ``root``; return the manifest."""
    manifest: dict[str, str] = {}
    if not root.is_dir():
        return manifest
    for bucket in sorted(p for p in root.iterdir() if p.is_dir()):
        create: dict[str, Any] = {"Bucket": bucket.name}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(**create)
        for path in sorted(p for p in bucket.rglob("*") if p.is_file()):
            key = path.relative_to(bucket).as_posix()
            with path.open("rb") as body:
                etag = client.put_object(Bucket=bucket.name, Key=key, Body=body)["ETag"]
            manifest[f"{bucket.name}/{key}"] = etag
    return manifest


def save(client: Any, root: Path, manifest: dict[str, str]) -> None:
    """Write what changed since ``manifest`` under ``root``: new, changed and deleted
    objects and buckets. Keys that cannot be files (``a/../b``, ``dir/``) are skipped."""
    root.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    buckets = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in sorted(buckets):
        (root / bucket).mkdir(exist_ok=True)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                path = _path(root, bucket, obj["Key"])
                if path is None:
                    continue
                name = f"{bucket}/{obj['Key']}"
                seen[name] = obj["ETag"]
                if manifest.get(name) != obj["ETag"] or not path.is_file():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                    tmp = path.with_name(path.name + ".partial")
                    with tmp.open("wb") as out:
                        for chunk in iter(functools.partial(body.read, 1 << 20), b""):
                            out.write(chunk)
                    tmp.replace(path)
    for name in manifest.keys() - seen.keys():
        with contextlib.suppress(OSError):
            (root / name).unlink()
    for stale in (p for p in root.iterdir() if p.is_dir() and p.name not in buckets):
        shutil.rmtree(stale, ignore_errors=True)
    (root / MANIFEST).write_text(json.dumps(seen))


def _path(root: Path, bucket: str, key: str) -> Path | None:
    return root / bucket / Path(*key.split("/")) if is_file_key(key) else None


def _speed_up_moto() -> None:
    """Two per-request costs of moto's server that a job's S3 calls feel (best effort):
    a new connection per request (HTTP/1.0), and a scan of moto's package directory
    to route each request (about 180 ``stat`` calls)."""
    with contextlib.suppress(ImportError, AttributeError):
        import moto.backends
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        MotoRequestHandler.protocol_version = "HTTP/1.1"
        modules = tuple(moto.backends.list_of_moto_modules())
        moto.backends.list_of_moto_modules = lambda: iter(modules)


def main(argv: list[str]) -> None:
    """The child: serve on a free loopback port, print the URL, save on EOF or SIGTERM."""
    root, region = Path(argv[0]) / "s3", argv[1]
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = (root.parent / "s3.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # an earlier child may still be saving
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the emulator decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    _speed_up_moto()
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = _client(f"http://{host}:{port}", region)
    manifest = load(client, root, region)
    try:
        print(f"http://{host}:{port}", flush=True)
        sys.stdin.buffer.read()  # until the emulator closes the pipe or dies
    finally:
        save(client, root, manifest)
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
