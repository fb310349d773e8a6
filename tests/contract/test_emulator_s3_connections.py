"""The emulator's S3 keeps a client's connection from one request to the next (HTTP/1.1
keep-alive), and closes it only when the next request could not be told apart from
what is left of this one (a chunked body, a length that is not a number) or when the
client asks. Each answer on a kept
connection is framed exactly: a HEAD's announced length, a refused upload's body read
and dropped, then the next request answered in turn. Requests reach moto as before:
metadata names with underscores keep their spelling."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sweeper.emulator.s3 import S3Server
from tests.helpers import s3_client, signed_headers


@pytest.fixture(scope="module")
def s3_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an S3 child (key ``test``) with one bucket."""
    server = S3Server(tmp_path_factory.mktemp("s3"), "us-east-1", (("test", "test"),))
    url = asyncio.run(server.start())
    try:
        s3_client(url).create_bucket(Bucket="bucket")
        yield url
    finally:
        server.close()


def _connect(url: str) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)


def _call(
    conn: http.client.HTTPConnection,
    url: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    sign: bool = True,
) -> http.client.HTTPResponse:
    """One request on ``conn``, its answer read whole."""
    headers = signed_headers(method, f"{url}{path}", "s3", body) if sign else {}
    conn.request(method, path, body=body or None, headers=headers)
    response = conn.getresponse()
    response.read()
    return response


def test_one_connection_serves_uploads_reads_and_heads_in_turn(s3_url: str) -> None:
    conn = _connect(s3_url)
    sockets = []
    for i in range(3):
        put = _call(conn, s3_url, "PUT", f"/bucket/kept/{i}", b"%d" % i * (1000 * i + 1))
        assert put.status == 200
        assert put.getheader("Connection") is None
        sockets.append(conn.sock)
    head = _call(conn, s3_url, "HEAD", "/bucket/kept/2")
    assert (head.status, head.getheader("Content-Length")) == (200, "2001")
    conn.request(
        "GET", "/bucket/kept/1", headers=signed_headers("GET", f"{s3_url}/bucket/kept/1", "s3")
    )
    get = conn.getresponse()
    assert (get.status, get.read()) == (200, b"1" * 1001)
    sockets.append(conn.sock)
    assert sockets[0] is not None
    assert all(sock is sockets[0] for sock in sockets)  # never reconnected
    conn.close()


def test_a_refused_upload_is_read_and_the_next_request_answered(s3_url: str) -> None:
    conn = _connect(s3_url)
    refused = _call(conn, s3_url, "PUT", "/bucket/evil", b"x" * 300_000, sign=False)
    assert refused.status == 403
    kept = conn.sock
    listed = _call(conn, s3_url, "GET", "/bucket?list-type=2")
    assert listed.status == 200
    assert conn.sock is kept is not None
    assert s3_client(s3_url).list_objects_v2(Bucket="bucket", Prefix="evil")["KeyCount"] == 0
    conn.close()


def test_a_chunked_upload_is_stored_and_its_connection_closed(s3_url: str) -> None:
    body = b"chunk" * 5000
    url = f"{s3_url}/bucket/chunked"
    headers = signed_headers(
        "PUT", url, "s3", body, {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}
    )
    headers.pop("Content-Length", None)
    conn = _connect(s3_url)
    pieces = [body[i : i + 7000] for i in range(0, len(body), 7000)]
    conn.request("PUT", "/bucket/chunked", body=iter(pieces), headers=headers, encode_chunked=True)
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert response.getheader("Connection") == "close"
    conn.close()
    assert s3_client(s3_url).get_object(Bucket="bucket", Key="chunked")["Body"].read() == body


def test_a_body_of_no_readable_length_closes_its_connection(s3_url: str) -> None:
    conn = _connect(s3_url)
    conn.putrequest("PUT", "/bucket/unmeasured")
    conn.putheader("Content-Length", "twelve")
    conn.endheaders()
    response = conn.getresponse()
    response.read()
    assert (response.status, response.getheader("Connection")) == (403, "close")
    conn.close()


def test_a_client_that_asks_for_close_gets_it(s3_url: str) -> None:
    conn = _connect(s3_url)
    headers = signed_headers("GET", f"{s3_url}/bucket?list-type=2", "s3")
    conn.request("GET", "/bucket?list-type=2", headers={**headers, "Connection": "close"})
    response = conn.getresponse()
    response.read()
    assert (response.status, response.getheader("Connection")) == (200, "close")
    assert conn.sock is None  # http.client saw the server's close
    conn.close()


def test_metadata_names_keep_their_underscores(s3_url: str, tmp_path: Path) -> None:
    s3 = s3_client(s3_url)
    metadata = {"my_key": "1", "other-key": "2", "run_id": "abc"}
    s3.put_object(Bucket="bucket", Key="meta", Body=b"{}", Metadata=metadata)
    assert s3.head_object(Bucket="bucket", Key="meta")["Metadata"] == metadata
