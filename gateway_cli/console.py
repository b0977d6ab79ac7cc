"""What ``llm-gateway up`` prints: its children's output as one stream, a line per event,
each with its process (``api``, ``worker``, ``lane``, ``mock``, ``up``).

- ``text`` (the default on a terminal): ``14:03:07 worker  info   duty taken  duty=batches``,
  in colour on a terminal; a JSON log line is rewritten so, any other line is prefixed.
- ``json`` (the default when stdout is not a terminal, or ``--log-format json``): every line
  a JSON object, as each process logs, with ``process`` added; a plain line is wrapped.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable
from typing import IO, Any

COLOURS = {"api": 36, "worker": 35, "lane": 34, "mock": 32, "up": 33}  # ANSI foregrounds
LEVELS = {"warning": 33, "error": 31, "critical": 31}
_SKIP = ("ts", "level", "logger", "msg", "process", "exc")


def choose(requested: str, stream: IO[str]) -> str:
    """``auto``: text on a terminal, JSON otherwise."""
    if requested != "auto":
        return requested
    return "text" if stream.isatty() else "json"


class Console:
    def __init__(self, fmt: str, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.fmt = fmt
        self.colour = fmt == "text" and self.out.isatty()
        self._lock = threading.Lock()

    # -- what is printed -----------------------------------------------------------------
    def say(self, process: str, msg: str, level: str = "info", **fields: Any) -> None:
        """One event of ``up`` itself (or of a child, parsed)."""
        event = {"ts": round(time.time(), 3), "level": level, "process": process, "msg": msg}
        self._emit({**event, **fields})

    def line(self, process: str, raw: str) -> None:
        """One line a child printed."""
        raw = raw.rstrip("\n")
        if not raw.strip():
            return
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self.say(process, raw.strip())
            return
        event.setdefault("process", process)
        self._emit(event)

    def pump(self, process: str, stream: Iterable[bytes]) -> threading.Thread:
        """Print a child's output as it comes, in the background."""

        def run() -> None:
            for raw in stream:
                self.line(process, raw.decode("utf-8", "replace"))

        t = threading.Thread(target=run, name=f"console-{process}", daemon=True)
        t.start()
        return t

    # -- formats -------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, default=str) if self.fmt == "json" else self._text(event)
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def _paint(self, code: int, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _text(self, event: dict[str, Any]) -> str:
        process = str(event.get("process") or "?")
        level = str(event.get("level") or "info")
        ts = event.get("ts")
        clock = time.strftime(
            "%H:%M:%S", time.localtime(ts if isinstance(ts, float | int) else None)
        )
        extras = " ".join(f"{k}={v}" for k, v in event.items() if k not in _SKIP)
        head = (
            f"{self._paint(2, clock)} {self._paint(COLOURS.get(process, 37), f'{process:<6}')} "
            f"{self._paint(LEVELS.get(level, 0), f'{level:<7}')}"
        )
        text = f"{head} {event.get('msg', '')}"
        if extras:
            text += "  " + self._paint(2, extras)
        if event.get("exc"):
            text += "\n" + "\n".join(f"    {x}" for x in str(event["exc"]).splitlines())
        return text
