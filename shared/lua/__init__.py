"""The Lua sources in this folder: a script's text, or a script as a function of (KEYS,
ARGV) to run inside another (one step that does both, with one source for the shared part).

A script may run twice with the same KEYS and ARGV: redis-py sends a call again when its reply
was lost (``shared/redis_client.py``). Each script's header says what a second run does, in a
"Repeat:" line: safe (idempotent), guarded (it finds its own first run and changes nothing,
answering as that run did), or an over-count by one that is accepted, and why."""

from __future__ import annotations

from pathlib import Path

LUA_DIR = Path(__file__).parent


def source(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


def as_function(name: str, function: str | None = None) -> str:
    return f"local function {function or name}(KEYS, ARGV)\n{source(name)}\nend\n"


def with_functions(script: str, *functions: str, libraries: tuple[str, ...] = ()) -> str:
    """``script`` preceded by each of ``functions`` (in order: later ones may call earlier),
    and before them each of ``libraries`` (see ``with_library``), which all may call."""
    return prelude(*functions, libraries=libraries) + source(script)


def prelude(*functions: str, libraries: tuple[str, ...] = ()) -> str:
    """The libraries' and the functions' sources, to go ahead of a script."""
    return library(*libraries) + "".join(as_function(f) for f in functions)


def library(*libraries: str) -> str:
    return "".join(source(lib) + "\n" for lib in libraries)


def with_library(script: str, *libraries: str) -> str:
    """``script`` preceded by each library's source: a file of local functions with no KEYS or
    ARGV of its own (``gcra.lua``), shared by several scripts."""
    return library(*libraries) + source(script)


# The UTC calendar and a key's budget period, used by every script that touches a budget.
BUDGET_FUNCTIONS = ("spend_clock", "budget_period")
# A job's budget reservation (its format written once), for the scripts that take, move or
# give back one.
BUDGET_HOLD = ("budget_hold",)
