"""The API in-process: a Flask app over fakeredis, with what it would publish recorded
(``Services.publish`` injected) instead of a broker."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import redis
from flask import Flask

from gateway_api.app import create_app
from gateway_api.services import Publish, Services
from shared.config.loader import load_config
from tests.support.clients import AUTH, CLIENT_KEY

H = {"Authorization": f"Bearer {CLIENT_KEY}"}
OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class Published(list[tuple[str, str]]):
    """Each (job id, priority) the app published, in order: a ``Services.publish``."""

    def __call__(self, app: Any, job_id: str, priority: str) -> None:
        self.append((job_id, priority))


def make_app(
    publish: Publish | None = None, client: redis.Redis | None = None, **overrides: Any
) -> Flask:
    """The app on a fresh fakeredis (or ``client``: a real Redis), with a mock provider ``p``
    serving model ``m`` and the test keys; ``overrides`` replace whole config sections."""
    doc = {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        "auth": AUTH,
        "limits": {"max_body_bytes": 4096, "max_messages": 3},
        **overrides,
    }
    loaded = load_config(env={"GATEWAY_CONFIG": json.dumps(doc)})
    services = Services.build(
        loaded,
        client=client if client is not None else fakeredis.FakeRedis(decode_responses=True),
        publish=Published() if publish is None else publish,
    )
    return create_app(services=services)
