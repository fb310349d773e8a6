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
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sweeper.emulator.host import end_child, module_argv

_STOP_SECONDS = 120.0  # time given to write the objects back


class S3Server:
    """Starts and stops the child. ``endpoint_url`` is set once :meth:`start` returns.

    :meth:`spawn` only starts the process (moto's imports take about half a second), so
    that the emulator's child process can have it booting while it imports and loads
    its own state; :meth:`start` spawns it if need be and waits for it to serve."""

    def __init__(self, root: Path, region: str, credentials: tuple[tuple[str, str], ...]) -> None:
        self.root = root
        self.region = region
        self._credentials = credentials
        self.endpoint_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the child and hand it the keys; return at once. Idempotent."""
        if self._proc is not None:
            return
        self._proc = proc = subprocess.Popen(
            module_argv("sweeper.emulator.s3", str(self.root), self.region),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a kill of the emulator's process group leaves it to save
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(self._credentials).encode() + b"\n")
        proc.stdin.flush()

    async def start(self) -> str:
        """Spawn the child unless done; return its endpoint once it serves every stored
        object."""
        self.spawn()
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
        if line.startswith("["):  # it could not open its directory
            await asyncio.to_thread(proc.wait)
            raise OSError(*json.loads(line))
        if not line.startswith("http://"):
            code = await asyncio.to_thread(proc.wait)
            raise RuntimeError(f"the emulator's S3 server did not start (exit {code})")
        self.endpoint_url = line
        return line

    async def stop(self) -> None:
        """Close the pipe: the child writes its objects to disk and exits."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """:meth:`stop`, blocking. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            end_child(proc, _STOP_SECONDS)

    def abandon(self) -> None:
        """End a child nobody was told the address of (its emulator did not start): no
        object can have changed, so there is nothing to save."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()


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


def _warm(client: Any, endpoint: str, region: str, key: str, secret: str) -> None:
    """Moto builds each service's app at its first request (STS: about 0.1 s, S3 about
    40 ms): made here, once the URL is out, rather than by the sweep's first calls (its
    account, for the default bucket's name; the bucket). ``client`` is the child's own
    S3 client. Best effort."""
    import botocore.session

    with contextlib.suppress(Exception):
        client.list_buckets()
    with contextlib.suppress(Exception):
        botocore.session.get_session().create_client(
            "sts",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        ).get_caller_identity()


def _speed_up_moto() -> None:
    """A per-request cost of moto's server that a job's S3 calls feel (best effort): a
    scan of moto's package directory to route each request (about 180 ``stat`` calls).
    (Connections are kept between requests: :mod:`sweeper.emulator.s3_http`.)"""
    with contextlib.suppress(ImportError, AttributeError):
        import moto.backends

        modules = tuple(moto.backends.list_of_moto_modules())
        moto.backends.list_of_moto_modules = lambda: iter(modules)


def main(argv: list[str]) -> None:
    """The child: read the keys from the pipe, serve on a free loopback port, print the
    URL, save on EOF or SIGTERM."""
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"  # read when moto is imported
    from sweeper.emulator.s3_gate import Gate  # the child's own: werkzeug, moto
    from sweeper.emulator.s3_store import Store

    root, region = Path(argv[0]), argv[1]
    secrets = {key: secret for key, secret in json.loads(sys.stdin.buffer.readline())}
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = (root / "s3.lock").open("w")
    except OSError as exc:  # a read-only or full disk: the emulator says so, once
        print(json.dumps([exc.errno, exc.strerror, str(exc.filename)]), flush=True)
        sys.exit(74)  # EX_IOERR
    fcntl.flock(lock, fcntl.LOCK_EX)  # an earlier child may still be saving
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the emulator decides when we stop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    _speed_up_moto()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from sweeper.emulator.s3_http import KeepAliveHandler

    app = Gate(DomainDispatcherApplication(create_backend_app), secrets)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=KeepAliveHandler)
    threading.Thread(target=server.serve_forever, name="s3", daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    key, secret = next(iter(secrets.items()))
    client = _client(url, region, key, secret)
    store = Store(root)
    store.load(client, region)
    try:
        print(url, flush=True)
        warm = threading.Thread(target=_warm, args=(client, url, region, key, secret), daemon=True)
        warm.start()
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
