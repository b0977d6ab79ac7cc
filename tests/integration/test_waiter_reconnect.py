"""The API process's completion listener across a real Redis outage: it reconnects by itself,
and the outage is one warning as it starts (the error's text, no traceback) and one as it
ends, not a traceback every half second while Redis is down."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from gateway_api.waiter import CompletionHub
from gateway_cli.embedded_redis import EmbeddedRedis
from tests.support.stack import wait_for

LOGGER = "gateway_api.waiter"


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_an_outage_is_one_warning_as_it_starts_and_one_as_it_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)
    hub = CompletionHub(client, "done")
    hub.direct_channel()  # starts the listener
    wait_for(hub._subscribed.is_set, 20, "the first subscription")
    server.stop(kill=True)
    # Several reconnect attempts fail while Redis is down.
    wait_for(lambda: len(_records(caplog, logging.DEBUG)) >= 3, 30, "reconnect attempts")
    warnings = _records(caplog, logging.WARNING)
    assert len(warnings) == 1, [w.getMessage() for w in warnings]
    assert "lost Redis" in warnings[0].getMessage() and warnings[0].exc_info is None
    server = EmbeddedRedis(tmp_path / "redis", port=server.port, appendonly=False).start()
    try:
        wait_for(hub._subscribed.is_set, 30, "the subscription after the restart")
        wait_for(lambda: len(_records(caplog, logging.WARNING)) == 2, 10, "the reconnect")
        assert "reconnected" in _records(caplog, logging.WARNING)[1].getMessage()
        # The listener hears notices again.
        with hub.expect("job_x") as waiter:
            assert not waiter.event.is_set()
            client.publish("done", "job_x")
            assert waiter.event.wait(10)
    finally:
        server.stop()
