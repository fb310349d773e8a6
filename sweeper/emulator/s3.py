"""The emulator's S3: moto's S3 server in a child process on loopback, kept on disk.

Why a child process: moto keeps its state in module globals, so two emulators in one
process would share buckets; a child also keeps moto's imports off the emulator's loop.

Persistence: moto holds objects in memory. The child loads them at start and writes
changes back when its standard input closes (:mod:`sweeper.emulator.s3_store`: any key,
written atomically). That happens when the emulator stops *or dies* (even by SIGKILL:
the pipe closes with the process), so objects survive an emulator restart as they
survive on S3. A lock on the directory makes a new child wait until the old one has
written everything. The child runs in a session of its own, so neither Ctrl-C in a
terminal nor a kill of the emulator's process group reaches it: it waits for its pipe.
(Objects written since the start are lost only if the child itself is killed.)

The endpoint also answers STS (``GetCallerIdentity``), which is how a sweep finds the
account for the SageMaker SDK's default bucket name. Like the SageMaker endpoint it
lets in only requests signed with the emulator's keys (:mod:`sweeper.emulator.s3_gate`),
which the child reads from its pipe, never from its command line or environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from sweeper.emulator.s3_gate import Gate
from sweeper.emulator.s3_store import Store

_STOP_SECONDS = 120.0  # time given to write the objects back


class S3Server:
    """Starts and stops the child. ``endpoint_url`` is set once :meth:`start` returns."""

    def __init__(self, root: Path, region: str, credentials: tuple[tuple[str, str], ...]) -> None:
        self.root = root
        self.region = region
        self._credentials = credentials
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
            start_new_session=True,  # a kill of the emulator's process group leaves it to save
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self._credentials).encode() + b"\n")
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


def _client(endpoint: str, region: str, key: str, secret: str) -> Any:
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


def _warm(endpoint: str, region: str, key: str, secret: str) -> None:
    """Moto builds each service's app at its first request (STS: about 0.1 s): made here,
    once the URL is out, rather than by the sweep's first call (its account, for the
    default bucket's name). Best effort."""
    import botocore.session

    with contextlib.suppress(Exception):
        botocore.session.get_session().create_client(
            "sts",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        ).get_caller_identity()


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
    """The child: read the keys from the pipe, serve on a free loopback port, print the
    URL, save on EOF or SIGTERM."""
    root, region = Path(argv[0]), argv[1]
    secrets = {key: secret for key, secret in json.loads(sys.stdin.buffer.readline())}
    root.mkdir(parents=True, exist_ok=True)
    lock = (root / "s3.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # an earlier child may still be saving
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the emulator decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"  # read when moto is imported
    _speed_up_moto()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = Gate(DomainDispatcherApplication(create_backend_app), secrets)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="s3", daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    key, secret = next(iter(secrets.items()))
    client = _client(url, region, key, secret)
    store = Store(root)
    store.load(client, region)
    try:
        print(url, flush=True)
        threading.Thread(target=_warm, args=(url, region, key, secret), daemon=True).start()
        sys.stdin.buffer.read()  # until the emulator closes the pipe or dies
    finally:
        try:
            store.save(client)
        except OSError as exc:  # a full disk: what was saved before stays whole
            print(
                f"emulator S3: the objects could not be saved ({exc.strerror}); those saved"
                " by an earlier stop are kept, those written since are lost",
                file=sys.stderr,
            )
        server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
