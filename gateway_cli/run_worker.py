"""``llm-gateway worker`` and ``llm-gateway beat``: Celery in the production configuration.

The caller (gateway_cli.main) has already run gevent's ``patch_all`` for the worker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings

from gateway_cli.common import check_redis_or_exit, load_or_exit
from gateway_cli.lanes import LANE_METRICS_ENV, InteractiveLane, split
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
    # The API's multiprocess directory is not ours. A worker with an interactive lane shares a
    # directory of its own with the lane, so its --metrics-port serves both processes' counts.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    lane_metrics = os.environ.pop(LANE_METRICS_ENV, None)
    if lane_metrics:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = lane_metrics
    loaded = load_or_exit(config_path)
    setup_logging(loglevel)
    check_redis_or_exit(loaded.settings, "worker")

    total = concurrency or loaded.settings.worker.concurrency
    lane: InteractiveLane | None = None
    effective = total
    if queues is None:  # the default deployment: reserve interactive capacity
        effective, reserved = split(total, loaded.settings.worker.interactive_share)
        if reserved:
            lane = InteractiveLane(reserved, config_path, loglevel, task_events)
            if metrics_port:
                lane_metrics = tempfile.mkdtemp(prefix="llm-gateway-worker-metrics-")
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = lane_metrics
                lane.env[LANE_METRICS_ENV] = lane_metrics
    from workers import job_slots
    from workers.celery_worker import app  # after PROMETHEUS_MULTIPROC_DIR is settled

    job_slots.configure(effective)

    options = dict(app.conf.broker_transport_options)
    options["max_connections"] = max(options.get("max_connections", 0), effective * 2)
    app.conf.broker_transport_options = options

    if metrics_port:
        from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

        registry = REGISTRY
        if lane is not None and lane_metrics:  # this process and its lane, summed
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)

    # Tasks take only ids, as JSON (no pickle): a message cannot run code, so Celery's
    # warning about running as root says nothing this worker needs (README "Console").
    warnings.filterwarnings("ignore", message="You're running the worker with superuser")
    argv = [
        "--quiet",  # no banner: one readable line per event instead (gateway_cli/console.py)
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
    if lane is None:
        app.worker_main(argv)
        return 0
    from celery import signals

    from workers.lifecycle import spawn

    def _stop_lane(**_: object) -> None:
        lane.stop()

    signals.worker_shutting_down.connect(_stop_lane, weak=False)
    lane.start()
    spawn(lane.supervise, "interactive-lane")
    try:
        app.worker_main(argv)
    finally:
        lane.stop()
        lane.wait(loaded.settings.worker.shutdown_grace_s + 2)
        if lane_metrics:
            shutil.rmtree(lane_metrics, ignore_errors=True)
    return 0


def run_beat(config_path: str | None, loglevel: str) -> int:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    load_or_exit(config_path)
    setup_logging(loglevel)
    from workers.celery_worker import app

    schedule = os.path.join(tempfile.gettempdir(), f"llm-gateway-beat-{os.getpid()}")
    app.start(["beat", "--loglevel", loglevel, "--schedule", schedule])
    return 0
