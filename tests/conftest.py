from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeper.emulator.server import EmbeddedEmulator
from tests.helpers import PROBE, aio_client, embedded_emulator, s3_client


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
