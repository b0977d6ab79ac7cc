"""``llm-gateway worker`` and ``llm-gateway beat``: Celery in the production configuration.

The caller (gateway_cli.main) has already run gevent's ``patch_all`` for the worker.
"""

from __future__ import annotations

import os
import tempfile

from gateway_cli.common import load_or_exit
from shared.celery_app import ALL_QUEUES
from shared.logs import setup_logging


def run_worker(
    config_path: str | None,
    concurrency: int | None,
    queues: str | None,
    loglevel: str,
    metrics_port: int = 0,
    task_events: bool = False,
) -> int:
    # One gevent process: its own metrics registry (the API's multiprocess dir is not ours).
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    loaded = load_or_exit(config_path)
    setup_logging(loglevel)
    from workers.celery_worker import app

    effective = concurrency or loaded.settings.worker.concurrency
    options = dict(app.conf.broker_transport_options)
    options["max_connections"] = max(options.get("max_connections", 0), effective * 2)
    app.conf.broker_transport_options = options

    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")

    argv = [
        "worker",
        "--pool",
        "gevent",
        "--concurrency",
        str(effective),
        "--queues",
        queues or ",".join(ALL_QUEUES),
        "--hostname",
        f"gw-worker-{os.getpid()}@%h",
        "--loglevel",
        loglevel,
        *(["--task-events"] if task_events else []),
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)
    return 0


def run_beat(config_path: str | None, loglevel: str) -> int:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    load_or_exit(config_path)
    setup_logging(loglevel)
    from workers.celery_worker import app

    schedule = os.path.join(tempfile.gettempdir(), f"llm-gateway-beat-{os.getpid()}")
    app.start(["beat", "--loglevel", loglevel, "--schedule", schedule])
    return 0
