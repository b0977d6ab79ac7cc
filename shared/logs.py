"""Structured JSON logs, one event per line; a request id travels with each record."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_RESERVED = set(vars(logging.makeLogRecord({})))
# Which part of the stack logs (api, worker, lane, mock): set by ``llm-gateway up`` for its
# children and by a worker for its interactive lane, so one console can tell them apart.
PROCESS = os.environ.get("GATEWAY_PROCESS", "")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if PROCESS:
            event["process"] = PROCESS
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            event["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in event and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-task "received"/"succeeded" lines cost CPU at hundreds of jobs/s; the runner logs
    # each job's outcome itself.
    for noisy in ("httpx", "httpcore", "urllib3", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
