"""Interactive capacity a batch backlog cannot take: the reserved interactive lane.

One Celery worker process cannot give a queue its own share of the pool (its prefetch window
and gevent loop are shared by every queue it consumes), so ``llm-gateway worker`` runs two:
this process consumes every queue with most of the concurrency, and a child process consumes
only ``gateway.interactive`` with ``worker.interactive_share`` of it. However deep the batch
backlog, an interactive job finds a free slot and an event loop that is not saturated: it
waits at most for the time one slot takes to free. The main process still serves interactive
jobs too (round-robin over its queues), so bursts spill over and lower priorities progress.

The child dies with its parent (``PR_SET_PDEATHSIG``: SIGTERM, a graceful stop that gives its
jobs back) and is restarted if it exits on its own.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

from shared.celery_app import QUEUES

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
# Set by a worker for its lane: the prometheus multiprocess directory they share.
LANE_METRICS_ENV = "GATEWAY_LANE_METRICS_DIR"


def split(concurrency: int, share: float) -> tuple[int, int]:
    """(main process, interactive lane) slots; no lane below 2 slots or with share 0."""
    if share <= 0 or concurrency < 2:
        return concurrency, 0
    reserved = min(concurrency - 1, max(1, round(concurrency * share)))
    return concurrency - reserved, reserved


def _forget_metrics(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the parent's shutdown still stops the lane
        pass


class InteractiveLane:
    def __init__(
        self,
        concurrency: int,
        config_path: str | None,
        loglevel: str,
        task_events: bool = False,
    ) -> None:
        self.argv = [
            sys.executable,
            "-m",
            "gateway_cli.main",
            "worker",
            "--queues",
            QUEUES["interactive"],
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            *(["--config", config_path] if config_path else []),
            *(["--task-events"] if task_events else []),
        ]
        self.env = {**os.environ, "GATEWAY_PROCESS": "lane"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def start(self) -> InteractiveLane:
        self.proc = subprocess.Popen(  # noqa: PLW1509
            self.argv, env=self.env, preexec_fn=_die_with_parent
        )
        log.info("interactive lane started", extra={"pid": self.proc.pid})
        return self

    def supervise(self) -> None:
        """Restart the lane if it exits while this process is not stopping (run in a
        background greenlet)."""
        while not self.stopping:
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self.stopping:
                log.error("interactive lane exited (%s); restarting", proc.returncode)
                _forget_metrics(proc.pid)
                time.sleep(1.0)
                if not self.stopping:
                    self.start()
            time.sleep(0.5)

    def stop(self) -> None:
        """Ask the lane to stop gracefully (it has the same grace period as this process)."""
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
