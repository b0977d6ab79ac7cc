"""The broker message of one ``gateway.run_job`` task, built without Celery's publisher, so
``create.lua`` can push it in the same step that creates the job.

Why by hand: Celery's ``send_task`` cost a quarter of the API's CPU per job (py-spy, c=64:
kombu builds the message, declares the queue, makes a Redis client, then a round trip of its
own), and a separate publish is a second step that can fail after the job exists. When the
broker is the job store's own Redis database, the message rides in ``create.lua``: one round
trip, and the job and its message exist together or not at all.

The format is Celery's task protocol 2 inside kombu's Redis envelope, exactly as
``send_task`` writes it to the queue's list; ``tests/unit/shared/wire/test_task_message.py``
builds one with Celery and kombu themselves and compares, so an upgrade that changes it fails
the suite.
"""

from __future__ import annotations

import base64
import os
import socket
import uuid
from urllib.parse import urlsplit

import orjson

from shared.celery_app import TASK_RUN_GROUP, TASK_RUN_JOB

# A group message unclaimed this long stops gathering jobs: the next job sends another. Bounds
# how long a lost group message (a worker died between fetching and taking it) holds jobs
# back; the pending sweep is the backstop for the jobs it did hold.
GROUP_TTL_MS = 1000
_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def run_job_message(job_id: str, queue: str) -> bytes:
    """The JSON kombu's Redis transport LPUSHes to ``queue`` for ``run_job(job_id)``."""
    return task_message(TASK_RUN_JOB, job_id, queue)


def run_group_message(queue: str, first: str = "") -> bytes:
    """The message for ``run_group(queue, first)``: run ``first`` (the job that sent it, if
    any) and the jobs gathered for that queue since."""
    return task_message(TASK_RUN_GROUP, queue, queue, first)


def task_message(task: str, arg: str, queue: str, *more: str) -> bytes:
    """The JSON kombu's Redis transport LPUSHes to ``queue`` for ``task(arg, *more)``."""
    task_id = str(uuid.uuid4())
    args = [arg, *more]
    body = base64.b64encode(orjson.dumps([args, {}, _EMBED])).decode()
    return orjson.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": task,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": repr(args),
                "kwargsrepr": "{}",
                "origin": _ORIGIN,
                "ignore_result": None,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def _where(url: str) -> tuple[str, str, int, str, str]:
    u = urlsplit(url)
    db = (u.path or "/0").strip("/") or "0"
    return (u.scheme, (u.hostname or "localhost"), u.port or 6379, db, u.password or "")


def same_redis(broker_url: str, redis_url: str) -> bool:
    """True when the broker is the job store's own Redis database (plain ``redis://`` or
    ``rediss://``, no kombu options in the query): only then can Lua publish."""
    if urlsplit(broker_url).scheme not in ("redis", "rediss") or "?" in broker_url:
        return False
    return _where(broker_url) == _where(redis_url)
