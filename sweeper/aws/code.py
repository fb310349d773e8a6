"""What a sweep uploads: its ``source_dir`` as ``sourcedir.tar.gz`` and local inputs.

Both are content-addressed: the S3 key holds a digest of the content, so an unchanged
directory maps to the same key, is found there and is not uploaded again (a resumed
sweep, a rerun, a second orchestrator). The archive is deterministic (sorted entries,
no timestamps or owners), so the digest depends on file names, modes and bytes only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweeper.aws.s3 import S3, join

_SKIP_DIRS = frozenset(
    {".git", ".sweeps", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_DIGEST_CHARS = 16


@dataclass(frozen=True, slots=True)
class Upload:
    """One thing to put on S3: a packed ``source_dir`` or a local input."""

    kind: str  # "code" or "input <channel>"
    source: Path
    uri: str  # the object (code) or the prefix (input) the job reads
    files: tuple[str, ...]
    size: int
    data: bytes | None = None  # the archive, for code

    @property
    def marker(self) -> str:
        """The object whose presence says the upload is complete."""
        return self.uri if self.data is not None else self.uri.rstrip("/") + ".complete"


def listing(source: Path) -> list[tuple[str, Path]]:
    """Files under ``source`` (or ``source`` itself), sorted, caches and VCS skipped."""
    if source.is_file():
        return [(source.name, source)]
    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in names:
            if not name.endswith(".pyc"):
                path = Path(root) / name
                found.append((path.relative_to(source).as_posix(), path))
    return sorted(found)


def pack(source: Path, files: list[tuple[str, Path]] | None = None) -> bytes:
    """``source`` (its ``files``, if already listed) as a deterministic ``tar.gz`` (the
    SDK's ``sourcedir.tar.gz`` layout)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for rel, path in files if files is not None else listing(source):
            info = tarfile.TarInfo(rel)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)
    return gzip.compress(raw.getvalue(), mtime=0)


def code_upload(source: Path, prefix: str) -> Upload:
    """The packed ``source_dir``, at ``<prefix>/source/<digest>/sourcedir.tar.gz``."""
    files = listing(source)
    data = pack(source, files)
    digest = hashlib.sha256(data).hexdigest()[:_DIGEST_CHARS]
    uri = join(prefix, "source", digest, "sourcedir.tar.gz")
    return Upload("code", source, uri, tuple(rel for rel, _ in files), len(data), data)


def input_upload(channel: str, source: Path, prefix: str) -> Upload:
    """A local input, at ``<prefix>/inputs/<channel>/<digest>/`` (the channel's S3Prefix)."""
    digest = hashlib.sha256()
    size = 0
    files = listing(source)
    for rel, path in files:
        file_digest = _file_digest(path)
        digest.update(f"{rel}\0{file_digest}\0".encode())
        size += path.stat().st_size
    uri = join(prefix, "inputs", channel, digest.hexdigest()[:_DIGEST_CHARS]) + "/"
    return Upload(f"input {channel}", source, uri, tuple(rel for rel, _ in files), size)


async def upload(item: Upload, s3: S3, say: Callable[[str], None]) -> bool:
    """Put ``item`` on S3 unless it is already there; True if it was uploaded.

    Idempotent and crash-safe: an input's marker object is written after its files,
    so an interrupted upload is redone, never taken for complete.
    """
    if await s3.exists(item.marker):
        say(f"{item.kind}: {item.uri} is already on S3 (unchanged), not uploaded again")
        return False
    say(f"{item.kind}: uploading {item.source} ({len(item.files)} files) to {item.uri}")
    if item.data is not None:
        await s3.put(item.uri, item.data)
        return True
    for rel in item.files:
        await s3.put(item.uri + rel, item.source / rel if item.source.is_dir() else item.source)
    await s3.put(item.marker, b"")
    return True


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
