"""The Celery app object and ``enqueue()``: the API publishes by task name, never importing
worker code.

Reliability settings. Celery on Redis delivers at least once, never exactly once, so these
settings make sure no message is lost and the job store (lease, compare-and-set result)
absorbs the duplicates: late acks and reject on worker lost (a task whose worker dies goes
back to the queue instead of being acked; Celery puts no cap on that, so the job counts its
deliveries against ``queue.max_deliveries``), prefetch 1, no result backend (under gevent the
Redis backend opened a connection per task; results live in the job record), a visibility
timeout longer than the longest allowed job (a task running longer would be handed out again
while it runs), and endless broker reconnects, at start-up and after a Redis restart.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared import kombu_client
from shared.config.settings import Settings

TASK_RUN_JOB = "gateway.run_job"
TASK_RUN_GROUP = "gateway.run_group"  # the jobs create.lua gathered for one queue
TASK_SWEEP_LEASES = "gateway.sweep_leases"
TASK_SWEEP_PENDING = "gateway.sweep_pending"
TASK_SWEEP_DUE = "gateway.sweep_due"
TASK_HEALTH_CHECK = "gateway.health_check"
# Parked retries are republished at this granularity (a retry delay is late by at most this).
DUE_SWEEP_INTERVAL_S = 0.25

QUEUES = {
    "interactive": "gateway.interactive",
    "normal": "gateway.normal",
    "batch": "gateway.batch",
}
CONTROL_QUEUE = "gateway.control"  # sweeps; never behind a backlog of jobs
ALL_QUEUES = (*QUEUES.values(), CONTROL_QUEUE)

# A publish is retried briefly, then the caller answers 503 (a 202 means "in the broker").
_PUBLISH_RETRY = {
    "max_retries": 3,
    "interval_start": 0.05,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


def celery_config(settings: Settings) -> dict[str, Any]:
    visibility_timeout = int(settings.queue.max_deadline_s + 10 * settings.worker.lease_s + 60)
    transport = {
        "visibility_timeout": visibility_timeout,
        # kombu's Redis pool defaults to 10 connections and raises (does not wait) past that.
        # Hundreds of gevent tasks acking at once exhausted it; the consumer took that for a
        # lost broker, reconnected, and a reserved message was lost (bench/, c=64). Size the
        # pool for the pool's concurrency; connections open only as needed.
        "max_connections": max(64, settings.worker.concurrency * 2),
    }
    if settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        # kombu's Redis "ack emulation" writes each delivered message to an unacked hash
        # (a MULTI with the message re-serialised) before the task may start, and deletes it
        # on ack: two round trips per message, the first on every job's latency path. What it
        # buys, redelivery of a message whose worker died, comes after `visibility_timeout`
        # (an hour and more); the job store already redelivers sooner and per job: the
        # lease reaper for a begun job, the pending sweep (within seconds, workers/reaper.py)
        # for one whose message was taken and lost. Without it kombu keeps the unacked set in
        # memory: prefetch still bounds what a worker takes, and a warm shutdown or a
        # `Reject(requeue)` still puts the message back.
        transport["ack_emulation"] = False
    return {
        "broker_url": settings.broker_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": QUEUES["normal"],
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # A broker reconnect must not cut the provider calls in flight: the lease absorbs a
        # redelivered duplicate (begin.lua skips a leased or terminal job).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_soft_shutdown_timeout": settings.worker.shutdown_grace_s,
        "worker_hijack_root_logger": False,
        # Three event publishes per task cost ~24% of a worker's CPU (bench/). Off unless
        # `llm-gateway worker --task-events`; Flower also switches them on at run time.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "broker_heartbeat": 0,
        "timezone": "UTC",
    }


def make_celery(settings: Settings) -> Celery:
    kombu_client.install()
    app = Celery("llm_gateway", set_as_current=True)
    app.conf.update(celery_config(settings))
    return app


def enqueue(app: Celery, job_id: str, priority: str) -> None:
    """Publish the job's task (its only argument is the job id). Raises on failure."""
    app.send_task(
        TASK_RUN_JOB,
        args=[job_id],
        queue=QUEUES[priority],
        retry=True,
        retry_policy=_PUBLISH_RETRY,
    )
