from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeper.emulator.embedded import EmbeddedEmulator
from tests import postgres
from tests.helpers import PROBE, aio_client, embedded_emulator, s3_client
from tests.mlflow_server import mlflow_server as start_mlflow_server


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmbeddedEmulator]:
    """A fresh emulator on loopback, state under tmp_path/emulator, short stop grace."""
    with embedded_emulator(tmp_path / "emulator", stop_grace_seconds=5) as emu:
        yield emu


@pytest.fixture
def s3(emulator: EmbeddedEmulator) -> Any:
    """A boto3 S3 client on the emulator's S3 (where bucket ``bucket`` exists)."""
    return s3_client(emulator.s3_endpoint_url)


@pytest.fixture
async def sagemaker(emulator: EmbeddedEmulator) -> AsyncIterator[Any]:
    """The real aiobotocore SageMaker client, pointed at the emulator."""
    async with aio_client(emulator.endpoint_url) as client:
        yield client


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "probe.py").write_text(PROBE)
    return code


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    """The PostgreSQL server CI started (``SWEEPER_TEST_POSTGRES_DIR``), or one of our own
    when the server binaries are installed."""
    shared = os.environ.get("SWEEPER_TEST_POSTGRES_DIR")
    if shared:
        yield postgres.Server(Path(shared))
        return
    if postgres.bin_dir() is None:
        pytest.skip("PostgreSQL's server is not installed (CI installs Debian's package)")
    with private_postgres_server() as server:
        yield server


@contextlib.contextmanager
def private_postgres_server() -> Iterator[postgres.Server]:
    """A throwaway cluster, for a test that stops and restarts its server."""
    if postgres.bin_dir() is None:
        pytest.skip("PostgreSQL's server is not installed (CI installs Debian's package)")
    root = Path(tempfile.mkdtemp(prefix="sweeper-pg-"))  # /tmp: the postgres user can enter
    server = postgres.make(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: postgres.Server) -> str:
    """A new, empty database on the test PostgreSQL; its URL (with a password)."""
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite store) on 127.0.0.1 for the session; its URL."""
    pytest.importorskip("mlflow", reason="the mlflow extra is part of `test`")
    with start_mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url
