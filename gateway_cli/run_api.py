"""``llm-gateway api``: the Flask app on gunicorn with gevent workers.

No ``--preload`` (docs/architecture.md "Known traps"): each worker patches, then builds the app.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway_cli.common import check_redis_or_exit, is_loopback, load_or_exit
from shared.logs import setup_logging

log = logging.getLogger("llm_gateway.api")


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _post_fork(server: Any, worker: Any) -> None:
    setup_logging()


class GatewayServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gateway_api import one_send
        from gateway_api.app import create_app

        one_send.install()
        return create_app(live=True)


def run_api(config_path: str | None, host: str, port: int, workers: int) -> int:
    setup_logging()
    loaded = load_or_exit(config_path)
    s = loaded.settings
    # The gunicorn workers serve without client keys only on a loopback bind (or with
    # auth.open), whatever config a worker loads when it is (re)started.
    os.environ["GATEWAY_LOOPBACK_BIND"] = "1" if is_loopback(host) else "0"  # app.LOOPBACK_BIND_ENV
    if not s.auth.keys:
        if not is_loopback(host) and not s.auth.open:
            print(
                f"llm-gateway: refusing to serve {host} without API keys. Configure auth.keys "
                "(llm-gateway keys new), or set auth.open: true for a private network.",
                file=sys.stderr,
            )
            return 2
        log.warning("AUTH DISABLED: no API keys configured; serving open on %s:%d", host, port)
        # Said once here, not again by each gunicorn worker (gateway_api/app.py).
        os.environ["GATEWAY_OPEN_WARNED"] = "1"  # gateway_api.app.OPEN_WARNED_ENV
    check_redis_or_exit(s, "API")
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(
        tempfile.gettempdir(), f"llm-gateway-metrics-api-{os.getpid()}"
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": max(1, workers),
        "worker_class": "gevent",
        "worker_connections": 2000,
        "timeout": 60,
        "graceful_timeout": 8,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "child_exit": _child_exit,
        "post_fork": _post_fork,
        "proc_name": "llm-gateway-api",
    }
    GatewayServer(options).run()
    return 0
