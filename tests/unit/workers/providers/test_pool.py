"""The provider pool's lean POST: one send per request, httpx's errors, any answer read whole."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpcore
import httpx
import pytest

from workers.providers.pool import CoalescingBackend, ShardedClient, _readable_now


class OneShotServer:
    """Answers each request on a connection with a fixed JSON body; records what it read."""

    def __init__(self, answer: bytes) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                head, sep, rest = buf.partition(b"\r\n\r\n")
                if sep:
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    if len(rest) >= length:
                        self.requests.append(head + sep + rest[:length])
                        buf = rest[length:]
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(self.answer), self.answer)
                        )
                        continue
                data = conn.recv(65536)
                if not data:
                    return
                buf += data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[OneShotServer]:
    s = OneShotServer(b'{"choices": []}')
    yield s
    s.close()


def test_the_transport_pool_uses_the_coalescing_backend() -> None:
    pool = ShardedClient(4, shards=2)
    try:
        for client in pool.clients:
            # A private httpx attribute: if an upgrade moves it, this fails, not production.
            assert isinstance(client._transport._pool._network_backend, CoalescingBackend)
    finally:
        pool.close()


def test_head_and_body_leave_in_one_write_and_the_answer_is_read(
    server: OneShotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[bytes] = []
    original = httpcore._backends.sync.SyncStream.write

    def counting(self: httpcore.NetworkStream, buffer: bytes, timeout: float | None = None) -> None:
        writes.append(buffer)
        original(self, buffer, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(httpcore._backends.sync.SyncStream, "write", counting)
    pool = ShardedClient(1)
    try:
        url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
        body = b'{"model":"m","messages":[]}'
        for _ in range(3):  # the second and third reuse the kept-alive connection
            resp = pool.post(url, body, {"Content-Type": "application/json"}, httpx.Timeout(5))
            assert resp.status_code == 200
            assert resp.json() == {"choices": []}
            assert resp.request.url == url
        assert len(writes) == 3, writes
        assert all(w.endswith(body) and w.startswith(b"POST /v1/chat/completions") for w in writes)
        assert server.requests == writes
    finally:
        pool.close()


def test_connection_errors_are_httpx_errors() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    pool = ShardedClient(1)
    try:
        with pytest.raises(httpx.ConnectError):
            pool.post(f"http://127.0.0.1:{port}/x", b"{}", {}, httpx.Timeout(2))
    finally:
        pool.close()


def test_an_idle_connection_the_peer_closed_is_seen_and_not_reused() -> None:
    """httpcore asks a kept-alive connection whether it is readable before reusing it; ours
    answers with the operating system's poll (not gevent's), and must still see a close."""
    a, b = socket.socketpair()
    try:
        assert _readable_now(a) is False  # idle, open: reusable
        b.close()
        assert _readable_now(a) is True  # the peer hung up: httpcore drops it
    finally:
        a.close()


def test_a_server_that_closes_after_each_answer_is_reconnected_to() -> None:
    """The answer keeps the connection alive, then the server hangs up (an idle timeout):
    the next request must go out on a new connection, not fail on the dead one."""
    closing = OneShotServer(b'{"choices": [1]}')
    hung_up = threading.Event()

    def one_request(conn: socket.socket) -> None:
        data = conn.recv(65536)
        if data:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                % (len(closing.answer), closing.answer)
            )
        conn.close()
        hung_up.set()

    closing._conn = one_request  # type: ignore[method-assign]
    pool = ShardedClient(1)
    try:
        url = f"http://127.0.0.1:{closing.port}/v1/chat/completions"
        for _ in range(3):
            hung_up.clear()
            resp = pool.post(url, b"{}", {}, httpx.Timeout(5))
            assert resp.json() == {"choices": [1]}
            assert hung_up.wait(5)
    finally:
        pool.close()
        closing.close()
