"""Which package may import which: the workers and the common code never load the API (nor
Flask), the API never loads the workers, and the common code loads neither.

Every ``.py`` file under ``gateway_api/``, ``workers/`` and ``shared/`` is parsed (``ast``) and
each of its imports is checked, those inside functions too, and ``importlib.import_module`` /
``__import__`` called with a literal name. ``gateway_cli/`` is the CLI: it starts either side
and may import both, so it is not checked."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The package a file is in -> the top-level modules it must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "gateway_api": ("workers",),
    "workers": ("gateway_api", "flask"),
    "shared": ("gateway_api", "workers", "flask"),
}


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted module name) of every absolute import in ``tree``. A relative import
    (``from . import x``) cannot leave its top-level package, so it crosses no layer."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            first = node.args[0]
            if (
                called in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value


def violations(rel_path: str, source: str) -> list[str]:
    """``path:line: imports X`` for each import of ``source`` (the file at ``rel_path``, from
    the repository's root) that its package may not make."""
    parts = Path(rel_path).with_suffix("").parts
    forbidden = FORBIDDEN.get(parts[0], ())
    if not forbidden:
        return []
    found = []
    for line, module in imported_modules(ast.parse(source, rel_path)):
        top = module.split(".")[0]
        if top in forbidden:
            found.append(f"{rel_path}:{line}: {parts[0]}/ imports {module}")
    return found


def checked_files() -> list[Path]:
    return sorted(p for top in FORBIDDEN for p in (ROOT / top).rglob("*.py"))


def test_no_package_imports_across_its_layer() -> None:
    files = checked_files()
    assert len(files) > 50, "the packages were not found"
    found = [
        v
        for path in files
        for v in violations(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
    ]
    assert found == [], "imports across the layers:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("rel_path", "source", "expected"),
    [
        # The batch line parser's old import (when it lived in workers/).
        (
            "workers/batch_parse.py",
            "from gateway_api.parsing import ChatRequest, parse_chat\n",
            ["workers/batch_parse.py:1: workers/ imports gateway_api.parsing"],
        ),
        (
            "shared/batch/lines.py",
            "import orjson\n\n\ndef f():\n    import gateway_api.parsing as p\n    return p\n",
            ["shared/batch/lines.py:5: shared/ imports gateway_api.parsing"],
        ),
        (
            "shared/x.py",
            "from flask import request\nfrom workers import runner\n",
            ["shared/x.py:1: shared/ imports flask", "shared/x.py:2: shared/ imports workers"],
        ),
        (
            "workers/x.py",
            "import importlib\nimportlib.import_module('gateway_api.app')\n",
            ["workers/x.py:2: workers/ imports gateway_api.app"],
        ),
        (
            "gateway_api/routes/x.py",
            "from workers import tasks\nimport workers.runner, json\n",
            [
                "gateway_api/routes/x.py:1: gateway_api/ imports workers",
                "gateway_api/routes/x.py:2: gateway_api/ imports workers.runner",
            ],
        ),
        (
            "gateway_api/x.py",
            "from shared import keys\nimport flask\nfrom . import parsing\nimport workersx\n",
            [],
        ),
        ("gateway_cli/x.py", "import gateway_api.app\nimport workers.tasks\n", []),
    ],
)
def test_the_check_sees_a_crossing_import(rel_path: str, source: str, expected: list[str]) -> None:
    assert violations(rel_path, source) == expected


# -- inside the API: only the HTTP layer touches Flask's request globals ---------------------
# The routes and the app's hooks read the request (``gateway_api/routes/incoming.py``) and hand
# what they read to the steps behind them (auth, limits, budget, ``accept``), which never reach
# for ``flask.request`` or ``flask.g`` themselves.
REQUEST_GLOBALS = frozenset({"request", "g", "session"})


def reaches_for_request(rel_path: str, source: str) -> list[str]:
    """``path:line: uses flask.X`` for each request global a module outside the HTTP layer
    (``gateway_api/routes/``, ``gateway_api/app.py``) imports or reads."""
    if rel_path.startswith("gateway_api/routes/") or rel_path == "gateway_api/app.py":
        return []
    tree = ast.parse(source, rel_path)
    # The names flask is bound to in this module (``import flask``, ``import flask as f``).
    flask_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "flask"
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "flask":
            for alias in node.names:
                if alias.name in REQUEST_GLOBALS:
                    found.append(f"{rel_path}:{node.lineno}: uses flask.{alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in flask_names
            and node.attr in REQUEST_GLOBALS
        ):
            found.append(f"{rel_path}:{node.lineno}: uses flask.{node.attr}")
    return found


def test_only_the_http_layer_reads_the_request() -> None:
    files = sorted((ROOT / "gateway_api").rglob("*.py"))
    found = [
        v
        for path in files
        for v in reaches_for_request(str(path.relative_to(ROOT)), path.read_text("utf-8"))
    ]
    assert found == [], "request globals outside the routes:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("rel_path", "source", "expected"),
    [
        # admission.py's old way of reading the Idempotency-Key.
        (
            "gateway_api/admission.py",
            "from flask import request\n",
            ["gateway_api/admission.py:1: uses flask.request"],
        ),
        (
            "gateway_api/key_limits.py",
            "import flask\n\n\ndef f(v):\n    flask.g.ratelimit = v\n",
            ["gateway_api/key_limits.py:5: uses flask.g"],
        ),
        (
            "gateway_api/auth.py",
            "from flask.globals import request\nimport flask as f\nf.g.x = 1\n",
            ["gateway_api/auth.py:1: uses flask.request", "gateway_api/auth.py:3: uses flask.g"],
        ),
        ("gateway_api/budget.py", "from flask import Response, jsonify\n", []),
        ("gateway_api/routes/chat.py", "from flask import request\n", []),
        ("gateway_api/app.py", "from flask import g, request\n", []),
    ],
)
def test_the_check_sees_a_helper_reading_the_request(
    rel_path: str, source: str, expected: list[str]
) -> None:
    assert reaches_for_request(rel_path, source) == expected
