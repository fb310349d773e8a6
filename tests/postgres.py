"""A real PostgreSQL server on 127.0.0.1 for the tests: Debian's package, a throwaway cluster.

``python tests/postgres.py start DIR`` makes a cluster in DIR (as the ``postgres`` user
when run as root: PostgreSQL refuses root), starts it on a free loopback port and
prints its URL; ``stop DIR`` stops it. CI starts one this way and names DIR in
``SWEEPER_TEST_POSTGRES_DIR``; without it, the ``postgres`` fixture starts its own when
the server binaries are installed. Host connections need the password: URLs carry one,
so the tests also see that Sweeper never prints it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "sweeper", "pg-secret-7"


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are (Debian keeps them out of PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


@dataclass(frozen=True)
class Server:
    """A cluster in ``root`` (its data, socket, log and URL files)."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def port(self) -> int:
        return int((self.root / "port").read_text())

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._ctl("start", "-w", "-t", "60", "-l", str(self.root / "log"))

    def stop(self) -> None:
        self._ctl("stop", "-w", "-t", "60", "-m", "fast")

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        psql = [str(_bin("psql")), "-h", str(self.root), "-p", str(self.port), "-U", USER]
        self._as_owner([*psql, "-d", "postgres", "-qc", f'CREATE DATABASE "{name}"'])
        return self.url(name)

    def _ctl(self, *args: str) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
        self._as_owner([str(_bin("pg_ctl")), "-D", str(self.data), "-o", options, *args])

    def _as_owner(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=120)


def make(root: Path) -> Server:
    """Initialise a cluster in ``root`` (which must be empty or new) on a free port."""
    root.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        (root / "port").write_text(str(s.getsockname()[1]))
    (root / "pw").write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        for child in root.iterdir():
            shutil.chown(child, "postgres", "postgres")
    server = Server(root)
    initdb = [str(_bin("initdb")), "-D", str(server.data), "-U", USER]
    auth = ["--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile", str(root / "pw")]
    server._as_owner([*initdb, *auth, "-E", "UTF8", "--no-sync"])
    return server


def _bin(name: str) -> Path:
    where = bin_dir()
    if where is None:
        raise RuntimeError("PostgreSQL's server binaries are not installed")
    return where / name


def main(argv: list[str]) -> int:
    command, root = argv[0], Path(argv[1])
    if command == "start":
        server = make(root)
        server.start()
        print(server.url())
    elif command == "stop":
        Server(root).stop()
    else:
        print(f"usage: {sys.argv[0]} start|stop DIR", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
