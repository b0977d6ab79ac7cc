"""A Redis client that sends the commands of concurrent callers together, as one pipeline.

Under load a worker has hundreds of jobs in flight, each taking its lease, checking a
breaker and writing its result, and an API process has dozens of requests creating jobs and
reading them: every one a round trip of its own, and on these VMs the ``send`` of a round
trip is the costliest step there is (py-spy at c=64: 26% of a worker's samples in
``socket.send``). Here one command is in flight per client at a time; the commands issued
meanwhile by other greenlets or threads wait and go out together in one pipeline the moment
it returns (what ioredis calls auto-pipelining). An idle process sends each command at once,
by the caller itself: no added wait.

Why by hand: redis-py has no auto-pipelining (its pipelines are explicit, per caller). Each
command keeps its own result and its own error (``raise_on_error=False``): a script's
``NoScriptError`` still reaches ``Script.__call__``, which loads the script and retries.
Not for blocking commands (``XREAD BLOCK``, ``BRPOP``): they would hold everyone's commands
back; those use a plain client (``make_redis(..., autopipeline=False)``).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import redis

MAX_BATCH = 256


def _in_gevent_hub() -> bool:
    """True in gevent's hub (where signal handlers run): waiting there for a queued command
    would wait for the hub itself (a worker's SIGTERM handler releasing its duty leases hung
    the stop: tests/chaos/test_worker_loss.py)."""
    gevent = sys.modules.get("gevent")
    if gevent is None:
        return False
    return bool(gevent.getcurrent() is gevent.get_hub())


class _Call:
    __slots__ = ("args", "options", "done", "result", "error")

    def __init__(self, args: tuple[Any, ...], options: dict[str, Any]) -> None:
        self.args, self.options = args, options
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class AutoPipelineRedis(redis.Redis):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._queue: list[_Call] = []
        self._in_flight = False
        self.batches = 0  # pipelines sent (several callers' commands each): for tests, metrics

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if _in_gevent_hub():  # a signal handler: it cannot wait for another greenlet
            return super().execute_command(*args, **options)
        call: _Call | None = None
        with self._lock:
            if self._in_flight:
                call = _Call(args, options)
                self._queue.append(call)
            else:
                self._in_flight = True
        if call is None:  # nothing in flight: send it now, from this caller
            try:
                return super().execute_command(*args, **options)
            finally:
                self._hand_over()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _hand_over(self) -> None:
        """After a command returns: send what queued up meanwhile, or stand down."""
        with self._lock:
            if not self._queue:
                self._in_flight = False
                return
        threading.Thread(target=self._drain, name="redis-autopipeline", daemon=True).start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if not batch:
                    self._in_flight = False
                    return
            self._send(batch)

    def _send(self, batch: list[_Call]) -> None:
        self.batches += 1
        try:
            pipe = super().pipeline(transaction=False)
            for call in batch:
                pipe.execute_command(*call.args, **call.options)
            results = pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every caller sees it
            for call in batch:
                call.error = exc
                call.done.set()
            return
        for call, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                call.error = result
            else:
                call.result = result
            call.done.set()
