"""The task message create.lua pushes is the one Celery and kombu write themselves.

Celery's ``send_task`` publishes to a real Redis here; its message and ours are compared field
by field (only the per-message ids and the publishing process may differ), so a Celery or
kombu upgrade that changes the format fails this test instead of stranding jobs in a queue no
worker can read. A Celery consumer then decodes ours as it would its own.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis
from celery import Celery

from shared.celery_app import QUEUES, TASK_RUN_GROUP, TASK_RUN_JOB, celery_config
from shared.config.loader import load_config
from shared.wire.task_message import run_group_message, run_job_message, same_redis

_PER_MESSAGE = {
    ("headers", "id"),
    ("headers", "root_id"),
    ("headers", "origin"),
    ("properties", "correlation_id"),
    ("properties", "reply_to"),
    ("properties", "delivery_tag"),
}


def _shape(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part, value in message.items():
        if isinstance(value, dict):
            out[part] = {
                k: ("<per message>" if (part, k) in _PER_MESSAGE else v) for k, v in value.items()
            }
        else:
            out[part] = value
    out["body"] = json.loads(base64.b64decode(message["body"]))
    return out


def celery_for(url: str) -> Celery:
    doc = {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        "redis": {"url": url},
    }
    settings = load_config(env={"GATEWAY_CONFIG": json.dumps(doc)}).settings
    app = Celery("pin", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


@pytest.mark.parametrize("task", [TASK_RUN_JOB, TASK_RUN_GROUP])
def test_our_message_is_the_one_celery_publishes(redis_db: str, task: str) -> None:
    r = redis.Redis.from_url(redis_db)
    app = celery_for(redis_db)
    queue = QUEUES["normal"]
    args = ["job_pin"] if task == TASK_RUN_JOB else [queue, "job_pin"]
    app.send_task(task, args=args, queue=queue)
    theirs = json.loads(r.rpop(queue))  # type: ignore[arg-type]
    ours = json.loads(
        run_job_message("job_pin", queue)
        if task == TASK_RUN_JOB
        else run_group_message(queue, "job_pin")
    )
    assert _shape(ours) == _shape(theirs)
    assert (
        ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    )
    assert ours["headers"]["id"] != json.loads(run_job_message("job_pin", queue))["headers"]["id"]


def test_a_celery_consumer_reads_our_message_as_its_own(redis_db: str) -> None:
    r = redis.Redis.from_url(redis_db)
    app = celery_for(redis_db)
    queue = QUEUES["interactive"]
    r.lpush(queue, run_job_message("job_read", queue))
    with app.connection_for_read() as conn:
        got: list[Any] = []
        q = conn.SimpleQueue(queue, no_ack=True)
        try:
            msg = q.get(timeout=5)
            got.append(msg)
        finally:
            q.close()
    message = got[0]
    assert message.headers["task"] == TASK_RUN_JOB
    args, kwargs, _embed = message.decode()
    assert (args, kwargs) == (["job_read"], {})
    assert message.delivery_info["routing_key"] == queue


def test_inline_publishing_only_when_the_broker_is_the_job_store() -> None:
    assert same_redis("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379")
    assert same_redis("redis://:pw@h:7000/3", "redis://:pw@h:7000/3")
    assert not same_redis("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/0")
    assert not same_redis("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6379/0")
    assert not same_redis("amqp://guest@localhost//", "redis://127.0.0.1:6379/0")
    assert not same_redis("sentinel://h:26379", "redis://h:26379")
    # kombu options in the query (e.g. a global key prefix) change where a queue lives.
    assert not same_redis("redis://h:6379/0?global_keyprefix=x", "redis://h:6379/0")
