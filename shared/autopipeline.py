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
from redis.client import Pipeline

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
    """One caller's commands: a single command, or an explicit pipeline's stack."""

    __slots__ = ("commands", "single", "done", "result", "error")

    def __init__(self, commands: list[tuple[tuple[Any, ...], dict[str, Any]]], single: bool):
        self.commands, self.single = commands, single
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
        with self._lock:
            lead = not self._in_flight
            if lead:
                self._in_flight = True
        if not lead:
            return self._run(_Call([(args, options)], single=True))
        # Nothing in flight: this caller sends its command itself, at once. The common case
        # on an idle process, so it builds no _Call and no Event (a tenth of a round trip).
        try:
            return super().execute_command(*args, **options)
        finally:
            self._hand_over()

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        """A caller's own pipeline (``transaction=False``) joins the shared round trip as one
        unit, its results in order; a transaction keeps a connection of its own."""
        pipe = super().pipeline(transaction, shard_hint)
        if not transaction:
            pipe.__class__ = _SharedPipeline
            pipe._owner = self  # type: ignore[attr-defined]
        return pipe

    def _run(self, call: _Call) -> Any:
        with self._lock:
            lead = not self._in_flight
            if lead:
                self._in_flight = True
            else:
                self._queue.append(call)
        if lead:  # nothing in flight: send it now, from this caller
            try:
                self._send([call], counted=False)
            finally:
                self._hand_over()
        else:
            call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _hand_over(self) -> None:
        """After a send returns: send what queued up meanwhile, or stand down."""
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

    def _send(self, batch: list[_Call], counted: bool = True) -> None:
        if counted:
            self.batches += 1
        try:
            if len(batch) == 1 and batch[0].single:
                args, options = batch[0].commands[0]
                results = [
                    _capture(
                        lambda: super(AutoPipelineRedis, self).execute_command(*args, **options)
                    )
                ]
            else:
                pipe = super().pipeline(transaction=False)
                for call in batch:
                    for args, options in call.commands:
                        pipe.execute_command(*args, **options)
                results = pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every caller sees it
            for call in batch:
                call.error = exc
                call.done.set()
            return
        i = 0
        for call in batch:
            n = len(call.commands)
            mine, i = results[i : i + n], i + n
            if call.single and isinstance(mine[0], BaseException):
                call.error = mine[0]
            else:
                call.result = mine[0] if call.single else mine
            call.done.set()


def _capture(step: Any) -> Any:
    """A single command's answer, or its ResponseError as a value (as a pipeline gives it)."""
    try:
        return step()
    except redis.ResponseError as exc:
        return exc


class _SharedPipeline(Pipeline):
    _owner: AutoPipelineRedis

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if not stack:
            return []
        if self.explicit_transaction or self.watching or _in_gevent_hub():
            return super().execute(raise_on_error)
        if self.scripts:
            self.load_scripts()
        try:
            results: list[Any] = self._owner._run(_Call(list(stack), single=False))
        finally:
            self.reset()
        if raise_on_error:
            self.raise_first_error(stack, results)
        return results
