"""A TCP proxy in front of a Redis that loses the reply to a chosen request, on purpose.

What a proxy, a load balancer or ``CLIENT KILL`` can do to a client: the request reaches Redis
and runs, then the connection is reset before the reply comes back. redis-py answers that by
sending the request again on a new connection (its ``retry``), so a step runs twice; the
gateway's scripts must come out of that as if it ran once.

``drop_reply(marker)``: the next request containing ``marker`` is forwarded; once Redis's reply
to it arrives (so the request has run), the client's side is closed without that reply.
``cut(marker)``: the next such request is not forwarded at all (it never reaches Redis); the
client's side is closed. Each applies ``times`` times, then the proxy forwards as usual.
``evalsha(script)`` is the marker of a registered script's calls. Plain sockets and threads.
For small requests (a few KB, read by Redis at once): the first bytes of a reply then come
after the whole request ran.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from typing import Any

_BUFFER = 65536
_TAIL = 256  # markers are shorter: one cut across two reads is still seen


def evalsha(script: Any) -> bytes:
    """The bytes every call of ``script`` (a redis-py ``Script``) carries: EVALSHA, its SHA."""
    return b"EVALSHA\r\n$40\r\n" + str(script.sha).encode()


@dataclass
class _Rule:
    marker: bytes
    times: int
    forward: bool  # True: let Redis run it, lose the reply; False: never let it through


class _Link:
    """One client connection and its own connection to Redis."""

    def __init__(self, proxy: LossyProxy, client: socket.socket) -> None:
        self.proxy, self.client = proxy, client
        self.upstream = socket.create_connection(proxy.upstream)
        self.doomed = False  # the reply now coming from Redis is to be lost
        self.tail = b""  # the end of what the client sent, for a marker cut across two reads
        self.closed = threading.Event()

    def start(self) -> None:
        for target in (self._client_to_redis, self._redis_to_client):
            threading.Thread(target=target, name="lossy-proxy", daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _client_to_redis(self) -> None:
        try:
            while not self.closed.is_set():
                data = self.client.recv(_BUFFER)
                if not data:
                    break
                rule = self.proxy.match(self.tail, data)
                self.tail = (self.tail + data)[-_TAIL:]
                if rule is not None and not rule.forward:
                    self.proxy.note()
                    break
                if rule is not None:
                    self.doomed = True  # before Redis can answer
                self.upstream.sendall(data)
        except OSError:
            pass
        self.close()

    def _redis_to_client(self) -> None:
        try:
            while not self.closed.is_set():
                data = self.upstream.recv(_BUFFER)
                if not data:
                    break
                if self.doomed:  # Redis ran the request: its reply is lost with the connection
                    self.proxy.note()
                    break
                self.client.sendall(data)
        except OSError:
            pass
        self.close()


class LossyProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._links: list[_Link] = []
        self.losses = 0  # requests whose reply was lost, or which were cut, so far
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, name="lossy-proxy-accept", daemon=True).start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def drop_reply(self, marker: bytes, times: int = 1) -> None:
        with self._lock:
            self._rules.append(_Rule(marker, times, forward=True))

    def cut(self, marker: bytes, times: int = 1) -> None:
        with self._lock:
            self._rules.append(_Rule(marker, times, forward=False))

    def match(self, tail: bytes, data: bytes) -> _Rule | None:
        """The rule a request read as ``data`` (after ``tail``, the end of what came before)
        falls under, using up one of its times; a marker seen whole in ``tail`` counted then."""
        seen = tail + data
        with self._lock:
            for rule in self._rules:
                start = max(0, len(tail) - len(rule.marker) + 1)
                if rule.times > 0 and seen.find(rule.marker, start) >= 0:
                    rule.times -= 1
                    return rule
        return None

    def note(self) -> None:
        with self._lock:
            self.losses += 1

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            link = _Link(self, client)
            with self._lock:
                self._links.append(link)
            link.start()

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
