"""What the emulator's S3 keeps on disk: every object S3 accepts, whatever its key.

Keys are never paths here. Under ``<root>/s3-objects``:

- ``index.json``: ``{"version": 1, "buckets": {bucket: {key: entry}}}``, an entry being
  the body's file name, the ETag, the content type and the user metadata;
- ``bodies/<2 hex>/<sha256 of bucket, key and ETag>``: each object's bytes.

A save writes the bodies that changed (each through a temporary file and a rename),
then the index the same way (that rename is the commit), then removes the bodies no
index lists. Whenever it stops, the directory holds a whole index whose bodies all
exist: the previous one or the new one. A load puts every indexed object back.

An index that cannot be read (truncated, not JSON) does not stop the emulator: the
directory is moved aside whole (``s3-objects.unreadable-<time>``), a line on stderr
says so, and S3 starts empty. The layout of earlier versions (one file per key under
``<root>/s3``, which lost keys that could not be paths) is read once and replaced.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.emulator.transfer import is_file_key

STORE = "s3-objects"
LEGACY = "s3"  # <root>/s3/<bucket>/<key>, before this layout
_INDEX = "index.json"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored object."""

    file: str
    etag: str
    content_type: str = "binary/octet-stream"
    metadata: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "etag": self.etag,
            "type": self.content_type,
            "meta": dict(self.metadata),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Entry:
        meta = raw.get("meta") or {}
        return cls(raw["file"], raw["etag"], raw.get("type") or "", tuple(sorted(meta.items())))


Index = dict[str, dict[str, Entry]]  # bucket -> key -> entry


class Store:
    """The on-disk side of the S3 child (blocking; the child has nothing else to do)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / STORE
        self.legacy = root / LEGACY
        self.index: Index = {}

    def load(self, client: Any, region: str) -> None:
        """Create every stored bucket and object through ``client`` (a botocore S3 client)."""
        self.index = self._read_index()
        for bucket in sorted(self.index):
            _create_bucket(client, bucket, region)
            for key, entry in sorted(self.index[bucket].items()):
                path = self._body(entry.file)
                if not path.is_file():
                    print(f"emulator S3: body of s3://{bucket}/{key} is missing", file=sys.stderr)
                    continue
                with path.open("rb") as body:
                    extra: dict[str, Any] = {"Metadata": dict(entry.metadata)}
                    if entry.content_type:
                        extra["ContentType"] = entry.content_type
                    client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        if not (self.dir / _INDEX).exists() and self.legacy.is_dir():
            self.index = _load_legacy(client, self.legacy, region)

    def save(self, client: Any) -> None:
        """Write what changed since the load (or the last save), then commit the index."""
        (self.dir / "bodies").mkdir(parents=True, exist_ok=True)
        index: Index = {}
        for bucket in sorted(b["Name"] for b in client.list_buckets().get("Buckets", [])):
            index[bucket] = {}
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    index[bucket][obj["Key"]] = self._kept(client, bucket, obj["Key"], obj["ETag"])
        _write_atomically(self.dir / _INDEX, _dump(index).encode())
        self.index = index
        self._collect()
        if self.legacy.is_dir():
            shutil.rmtree(self.legacy, ignore_errors=True)

    def _kept(self, client: Any, bucket: str, key: str, etag: str) -> Entry:
        """The entry for an object, its body written unless it is already on disk."""
        old = self.index.get(bucket, {}).get(key)
        if old is not None and old.etag == etag and self._body(old.file).is_file():
            return old
        answer = client.get_object(Bucket=bucket, Key=key)
        file = hashlib.sha256(f"{bucket}\0{key}\0{answer['ETag']}".encode()).hexdigest()
        path = self._body(file)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f"{file}.partial")
        with tmp.open("wb") as out:
            for chunk in iter(functools.partial(answer["Body"].read, 1 << 20), b""):
                out.write(chunk)
        tmp.replace(path)
        meta = tuple(sorted((answer.get("Metadata") or {}).items()))
        return Entry(file, answer["ETag"], answer.get("ContentType") or "", meta)

    def _collect(self) -> None:
        """Remove bodies the index no longer lists (and partial ones)."""
        listed = {e.file for objects in self.index.values() for e in objects.values()}
        for path in (self.dir / "bodies").glob("*/*"):
            if path.name not in listed:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _body(self, file: str) -> Path:
        return self.dir / "bodies" / file[:2] / file

    def _read_index(self) -> Index:
        path = self.dir / _INDEX
        if not path.exists():
            return {}
        try:
            raw = json.loads(path.read_bytes())
            return {
                bucket: {key: Entry.from_json(e) for key, e in objects.items()}
                for bucket, objects in raw["buckets"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self.dir.with_name(f"{STORE}.unreadable-{int(time.time())}")
            self.dir.rename(aside)
            print(
                f"emulator S3: {path} cannot be read ({exc.__class__.__name__}); it and the"
                f" objects are kept in {aside}, and S3 starts empty",
                file=sys.stderr,
            )
            return {}


def _dump(index: Index) -> str:
    buckets = {b: {k: e.as_json() for k, e in objs.items()} for b, objs in index.items()}
    return json.dumps({"version": 1, "buckets": buckets})


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _create_bucket(client: Any, bucket: str, region: str) -> None:
    create: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": region}
    client.create_bucket(**create)


def _load_legacy(client: Any, root: Path, region: str) -> Index:
    """Put back the objects of the one-file-per-key layout (the next save replaces it)."""
    for bucket in sorted(p for p in root.iterdir() if p.is_dir()):
        _create_bucket(client, bucket.name, region)
        for path in sorted(p for p in bucket.rglob("*") if p.is_file()):
            key = path.relative_to(bucket).as_posix()
            if is_file_key(key) and not key.endswith(".partial"):
                with path.open("rb") as body:
                    client.put_object(Bucket=bucket.name, Key=key, Body=body)
    return {}
