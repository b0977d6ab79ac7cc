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
    config_path: str | None, concurrency: int | None, queues: str | None, loglevel: str
) -> int:
    loaded = load_or_exit(config_path)
    setup_logging(loglevel)
    from workers.celery_worker import app

    argv = [
        "worker",
        "--pool",
        "gevent",
        "--concurrency",
        str(concurrency or loaded.settings.worker.concurrency),
        "--queues",
        queues or ",".join(ALL_QUEUES),
        "--hostname",
        f"gw-worker-{os.getpid()}@%h",
        "--loglevel",
        loglevel,
        "--task-events",
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)
    return 0


def run_beat(config_path: str | None, loglevel: str) -> int:
    load_or_exit(config_path)
    setup_logging(loglevel)
    from workers.celery_worker import app

    schedule = os.path.join(tempfile.gettempdir(), f"llm-gateway-beat-{os.getpid()}")
    app.start(["beat", "--loglevel", loglevel, "--schedule", schedule])
    return 0
