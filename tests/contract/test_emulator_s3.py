"""The emulator's S3 keeps every object S3 accepts, whatever its key, across a graceful
stop and a SIGKILL of the emulator, and starts past an unreadable index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper.emulator.embedded import EmbeddedEmulator
from sweeper.emulator.s3_store import STORE
from sweeper.emulator.settings import EmulatorSettings, RunnerSettings
from tests.helpers import emulator_info, s3_client, standalone_emulator, start_emulator_process

# Keys that cannot all be files of one tree: a key that is also a prefix, a segment
# longer than a file name may be, empty and dot segments, a trailing slash, and names
# the store itself uses.
KEYS = [
    "ckpt",
    "ckpt/epoch1",
    "ckpt/epoch1/",
    "ckpt/epoch1/model.pt",
    "s" * 300 + "/weights",
    "a//b",
    "../up/../x",
    "./here",
    "dir/",
    "ünï cödé/?&=#%.txt",
    "index.json",
    "bodies/zz",
    "x.partial",
]


def _fill(s3: Any) -> None:
    s3.create_bucket(Bucket="bucket")
    s3.create_bucket(Bucket="empty-bucket")
    for i, key in enumerate(KEYS):
        s3.put_object(Bucket="bucket", Key=key, Body=f"body {i}".encode())
    s3.put_object(
        Bucket="bucket",
        Key="typed.json",
        Body=b"{}",
        ContentType="application/json",
        Metadata={"run": "7"},
    )
    s3.put_object(Bucket="bucket", Key="deleted", Body=b"gone")
    s3.delete_object(Bucket="bucket", Key="deleted")


def _check(s3: Any) -> None:
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="bucket").get("Contents", [])]
    assert sorted(listed) == sorted([*KEYS, "typed.json"])
    for i, key in enumerate(KEYS):
        assert s3.get_object(Bucket="bucket", Key=key)["Body"].read() == f"body {i}".encode()
    typed = s3.get_object(Bucket="bucket", Key="typed.json")
    assert typed["ContentType"] == "application/json"
    assert typed["Metadata"] == {"run": "7"}
    buckets = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    assert buckets == ["bucket", "empty-bucket"]


def test_every_key_survives_a_graceful_stop_and_a_second_one(tmp_path: Path) -> None:
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "state"))
    with EmbeddedEmulator(settings) as first:
        _fill(s3_client(first.s3_endpoint_url))
    for _ in range(2):  # a load then a save with nothing changed keeps everything too
        with EmbeddedEmulator(settings) as again:
            _check(s3_client(again.s3_endpoint_url))


def test_every_key_survives_a_sigkill_of_the_emulator(tmp_path: Path) -> None:
    state = tmp_path / "state"
    crashed, url = start_emulator_process(state)
    try:
        _fill(s3_client(emulator_info(url)["s3_endpoint_url"]))
    finally:
        crashed.kill()  # no shutdown code runs in the emulator
        crashed.wait(timeout=30)
    with standalone_emulator(state) as url:
        _check(s3_client(emulator_info(url)["s3_endpoint_url"]))


def test_an_unreadable_index_is_kept_aside_and_s3_starts(tmp_path: Path) -> None:
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "state"))
    with EmbeddedEmulator(settings) as first:
        _fill(s3_client(first.s3_endpoint_url))
    index = tmp_path / "state" / STORE / "index.json"
    truncated = index.read_bytes()[:100]
    index.write_bytes(truncated)
    with EmbeddedEmulator(settings) as second:
        s3 = s3_client(second.s3_endpoint_url)
        assert s3.list_buckets()["Buckets"] == []
        s3.create_bucket(Bucket="fresh")
    aside = list((tmp_path / "state").glob(f"{STORE}.unreadable-*"))
    assert len(aside) == 1
    assert (aside[0] / "index.json").read_bytes() == truncated
    assert len(list((aside[0] / "bodies").glob("*/*"))) == len(KEYS) + 1
    with EmbeddedEmulator(settings) as third:
        names = [b["Name"] for b in s3_client(third.s3_endpoint_url).list_buckets()["Buckets"]]
    assert names == ["fresh"]


def test_objects_of_the_earlier_one_file_per_key_layout_are_read_once(tmp_path: Path) -> None:
    legacy = tmp_path / "state" / "s3" / "bucket" / "code"
    legacy.mkdir(parents=True)
    (legacy / "sourcedir.tar.gz").write_bytes(b"tarball")
    settings = EmulatorSettings(RunnerSettings(root=tmp_path / "state"))
    with EmbeddedEmulator(settings) as first:
        body = s3_client(first.s3_endpoint_url).get_object(
            Bucket="bucket", Key="code/sourcedir.tar.gz"
        )["Body"]
        assert body.read() == b"tarball"
    assert not (tmp_path / "state" / "s3").exists()
    with EmbeddedEmulator(settings) as second:
        body = s3_client(second.s3_endpoint_url).get_object(
            Bucket="bucket", Key="code/sourcedir.tar.gz"
        )["Body"]
        assert body.read() == b"tarball"
