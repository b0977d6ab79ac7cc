"""gunicorn responses in one send: the same bytes gunicorn writes, in one piece."""

from __future__ import annotations

from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi

from gateway_api import one_send


class Sock:
    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


class Req:
    version = (1, 1)
    method = "POST"

    def should_close(self) -> bool:
        return False


def respond(headers: list[tuple[str, str]], chunks: list[bytes]) -> list[bytes]:
    sock = Sock()
    resp = wsgi.Response(Req(), sock, Config())
    resp.start_response("200 OK", headers)
    for chunk in chunks:
        resp.write(chunk)
    resp.close()
    return sock.sends


CASES: list[tuple[list[tuple[str, str]], list[bytes]]] = [
    ([("Content-Type", "application/json"), ("Content-Length", "11")], [b'{"ok":true}']),
    ([("Content-Type", "text/plain"), ("Content-Length", "6")], [b"abc", b"def"]),
    ([("Content-Type", "text/event-stream")], [b"data: 1\n\n", b"data: 2\n\n"]),  # chunked
    ([("Content-Length", "0")], []),
]


@pytest.mark.parametrize(("headers", "chunks"), CASES)
def test_the_bytes_are_gunicorns_own(
    monkeypatch: pytest.MonkeyPatch, headers: list[tuple[str, str]], chunks: list[bytes]
) -> None:
    # The Date header is the clock's second: the two answers must not straddle a tick.
    monkeypatch.setattr(wsgi.util, "http_date", lambda *_: "Thu, 03 Dec 2026 00:00:00 GMT")
    theirs = respond(headers, chunks)
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)  # restored afterwards
    one_send.install()
    ours = respond(headers, chunks)
    assert b"".join(ours) == b"".join(theirs)
    assert ours[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_json_answer_leaves_in_one_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)
    before = respond(*CASES[0])
    one_send.install()
    after = respond(*CASES[0])
    assert len(before) == 2
    assert len(after) == 1
    assert after[0].endswith(b'\r\n\r\n{"ok":true}')


def test_install_twice_wraps_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)
    one_send.install()
    first: Any = wsgi.Response.write
    one_send.install()
    assert wsgi.Response.write is first
