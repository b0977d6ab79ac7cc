"""``workers.celery_worker`` is what ``celery -A`` and ``llm-gateway worker`` import: importing it
must load no config and open no connection; its app is built when first asked for."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import socket, sys
def refuse(*a, **k):
    raise SystemExit("connected at import")
socket.socket.connect = refuse
socket.create_connection = refuse
import workers.celery_worker as w
print("imported")
try:
    w.app
except Exception as exc:  # the unreadable config file, read only now
    print(type(exc).__name__)
"""


def test_import_loads_no_config_and_the_app_is_built_when_asked_for() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"GATEWAY_CONFIG_FILE": "/nonexistent/gateway.yml", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["imported", "ConfigError"], out.stdout + out.stderr
