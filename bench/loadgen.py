"""The benchmarks' load generator and measuring helpers, shared by every bench script so the
gateway and its peers are driven and measured the same way."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

TICKS = os.sysconf("SC_CLK_TCK")
NODELAY_OPT = (6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY, on


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (gunicorn workers, an interactive lane)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def cpu_seconds(*pids: int) -> float:
    """utime + stime of the processes and their live descendants, in seconds."""
    total = 0.0
    for root in pids:
        for p in process_tree(root):
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICKS
            except (OSError, IndexError):
                pass
    return total


def rss_mb(*pids: int) -> float:
    """Resident memory of the processes and their descendants, in MB."""
    total = 0
    for root in pids:
        for p in process_tree(root):
            try:
                for line in Path(f"/proc/{p}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
    return total / 1024


def bench_stack(prefix: str, **overrides: Any) -> tuple[Any, Any, Any]:
    """An embedded Redis, the mock provider and a stack on them, in a fresh directory:
    (server, mock process, stack). Stop them in reverse order."""
    import os
    import tempfile
    from pathlib import Path

    from gateway_cli.embedded_redis import EmbeddedRedis, free_port
    from tests.support.stack import Proc, Stack, port_open, wait_for

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = EmbeddedRedis(tmp / "redis", appendonly=False).start()
    mock_port = free_port()
    mock = Proc("mock", ["mock-provider", "--port", str(mock_port)], dict(os.environ), tmp)
    wait_for(lambda: port_open(mock_port), 20, "mock")
    return server, mock, Stack(tmp / "stack", f"{server.url[:-2]}/1", mock_port, **overrides)


@contextmanager
def running_stack(prefix: str, **overrides: Any) -> Iterator[Any]:
    """``bench_stack``'s stack, and everything stopped after (stack, mock, Redis)."""
    server, mock, stack = bench_stack(prefix, **overrides)
    try:
        yield stack
    finally:
        stack.stop()
        mock.stop()
        server.stop()


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def chat_body(tag: str, **mock: Any) -> dict[str, Any]:
    """A chat request with a distinct prompt (no cache hit anywhere)."""
    b: dict[str, Any] = {
        "model": "mock-model",
        "messages": [{"role": "user", "content": f"{tag} {uuid.uuid4().hex}"}],
    }
    if mock:
        b["mock"] = mock
    return b


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: the load generator.

    httpx's AsyncClient tops out near 200 req/s at 64 connections on this machine (its pool
    bookkeeping), which would measure the client, not the target.
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        u = httpx.URL(url)
        self.host, self.port = u.host, u.port or 80
        self.path = u.raw_path.decode()
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str | None = None, payload: Any = None
    ) -> tuple[int, bytes]:
        reused = self.writer is not None
        try:
            return await self._request(method, path, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            # The server closed the idle keep-alive connection (gunicorn's keepalive): as any
            # HTTP client does, send again on a fresh one.
            self.close()
            self.writer = None
            return await self._request(method, path, payload)

    async def _request(self, method: str, path: str | None, payload: Any) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.get_extra_info("socket").setsockopt(*NODELAY_OPT)
        assert self.reader is not None
        data = b"" if payload is None else json.dumps(payload).encode()
        head = (
            f"{method} {path or self.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        raw_head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw_head.split(b" ", 2)[1])
        length, chunked = 0, False
        for line in raw_head.split(b"\r\n"):
            low = line.lower()
            if low.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif low.startswith(b"transfer-encoding:") and b"chunked" in low:
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(parts)
            parts.append(chunk[:-2])

    async def post(self, payload: dict[str, Any]) -> tuple[int, bytes]:
        return await self.request("POST", None, payload)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(
    url: str,
    n: int,
    concurrency: int,
    make: Callable[[int], dict[str, Any]],
    expect: int,
    headers: dict[str, str] | None = None,
    duration_s: float | None = None,
) -> tuple[float, list[float], list[bytes]]:
    """``n`` requests (or as many as fit in ``duration_s``) over ``concurrency`` keep-alive
    connections. Returns (seconds, latencies ms, bodies)."""
    latencies: list[float] = []
    bodies: list[bytes] = []
    counter = iter(range(n))
    stop_at = time.perf_counter() + duration_s if duration_s else float("inf")

    async def runner() -> None:
        client = RawClient(url, headers)
        try:
            for i in counter:
                if time.perf_counter() >= stop_at:
                    return
                started = time.perf_counter()
                status, raw = await client.post(make(i))
                assert status == expect, raw[:500]
                latencies.append((time.perf_counter() - started) * 1000)
                bodies.append(raw)
        finally:
            client.close()

    started = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, bodies


def sequential(url: str, n: int, headers: dict[str, str] | None = None) -> list[float]:
    """``n`` requests one after another on one connection; latencies in ms."""
    _, lat, _ = asyncio.run(load(url, n, 1, lambda i: chat_body(f"seq{i}"), 200, headers))
    return lat


def fleet_ready(api_url: str) -> bool:
    """Does the API say the fleet is ready? False while it cannot answer yet (a gunicorn worker
    still booting may reset the connection)."""
    try:
        return bool(httpx.get(f"{api_url}/health/ready").json()["fleet_ready"])
    except (httpx.HTTPError, ValueError, KeyError):
        return False
