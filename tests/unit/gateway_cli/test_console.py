"""The console ``llm-gateway up`` prints: a line per event named by its process, colour only
on a terminal, JSON lines when asked or when stdout is not a terminal."""

from __future__ import annotations

import io
import json

from gateway_cli.console import Console, choose


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_text_lines_name_the_process_and_colour_only_on_a_terminal() -> None:
    plain = io.StringIO()
    c = Console("text", plain)
    c.line("worker", json.dumps({"ts": 0.0, "level": "info", "msg": "duty taken", "duty": "x"}))
    c.line("worker", '{"level": "warning", "msg": "from the lane", "process": "lane"}')
    c.line("mock", "mock provider on http://127.0.0.1:1")
    c.line("api", "   ")  # blank lines are dropped
    lines = plain.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].split()[1:4] == ["worker", "info", "duty"] and lines[0].endswith("duty=x")
    assert lines[1].split()[1:3] == ["lane", "warning"]  # a lane's line says so
    assert lines[2].split()[1] == "mock" and "\x1b[" not in plain.getvalue()
    tty = Tty()
    Console("text", tty).say("up", "ready")
    assert "\x1b[33m" in tty.getvalue()  # coloured on a terminal


def test_json_lines_stay_json_with_their_process() -> None:
    out = io.StringIO()
    c = Console("json", out)
    c.line("worker", json.dumps({"level": "info", "msg": "hello"}))
    c.line("mock", "a plain line")
    events = [json.loads(x) for x in out.getvalue().splitlines()]
    assert events[0] == {"level": "info", "msg": "hello", "process": "worker"}
    assert events[1]["process"] == "mock" and events[1]["msg"] == "a plain line"
    assert choose("auto", io.StringIO()) == "json" and choose("auto", Tty()) == "text"
    assert choose("json", Tty()) == "json"
