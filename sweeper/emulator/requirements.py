"""A job's ``requirements.txt``, installed as SageMaker's training toolkit does before
the entry point runs, unless this interpreter already satisfies every line (then nothing
is downloaded: the emulator's jobs share the interpreter that runs them)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from sweeper.emulator.errors import ScriptFailure
from sweeper.emulator.logs import LogStore, Stream


def unmet(code: Path) -> list[str] | None:
    """The lines of ``requirements.txt`` this interpreter does not satisfy (or cannot
    check: options, URLs), or None if there is no such file (blocking)."""
    path = code / "requirements.txt"
    if not path.is_file():
        return None
    found: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
            applies = req.marker is None or req.marker.evaluate()
            satisfied = not applies or req.specifier.contains(
                metadata.version(req.name), prereleases=True
            )
        except (InvalidRequirement, metadata.PackageNotFoundError):
            satisfied = False
        if not satisfied:
            found.append(line)
    return found


async def install(
    unmet: list[str] | None, logs: LogStore, stream: Stream, code: Path, mark: dict[str, str]
) -> None:
    """``pip install -r requirements.txt`` in ``code``, its output on the job's log
    ``stream``, unless ``unmet`` (from :func:`unmet`) is empty (a line says so) or None
    (no such file). ``mark``: the environment the emulator finds its processes by. A
    failed install fails the job (ScriptFailure), as the toolkit's does."""
    if unmet is None:
        return
    if not unmet:
        logs.append(stream, "requirements.txt: already satisfied, nothing to install")
        return
    argv = [sys.executable, "-m", "pip", "install", "-r", "requirements.txt"]
    logs.append(stream, f"Installing requirements: {' '.join(argv[1:])}")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=code,
        env=dict(os.environ) | mark,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    tail: deque[str] = deque(maxlen=5)
    while line := await proc.stdout.readline():
        text = line.decode("utf-8", errors="replace").rstrip("\n")
        logs.append(stream, text)
        tail.append(text)
    if await proc.wait() != 0:
        raise ScriptFailure(
            f"AlgorithmError: InstallRequirementsError:\nExitCode {proc.returncode}\n"
            f'ErrorMessage "{" ".join(tail)[-600:]}"\nCommand "{" ".join(argv[1:])}"'
        )
