"""Settings that only make sense together, and Redis URLs redis-py cannot open, are refused by
the real loader, each error naming the dotted field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.config.loader import load_config
from shared.errors import ConfigError


def refused(env: dict[str, str] | None = None, **doc: Any) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as info:
        load_config(env={"GATEWAY_CONFIG": json.dumps(doc), **(env or {})})
    return info.value.errors


def test_the_defaults_validate_and_redeliver_a_lost_job_within_its_deadline_and_age() -> None:
    q = load_config(env={}).settings.queue
    assert q.redeliver_after_s == 120
    assert q.redeliver_after_s < q.max_age_s and q.redeliver_after_s < q.deadline_s
    assert q.result_ttl_s >= q.max_deadline_s


def test_redeliver_after_s_must_be_below_max_age_s() -> None:
    errors = refused(queue={"max_age_s": 100, "redeliver_after_s": 100})
    assert list(errors) == ["queue.redeliver_after_s"], errors
    assert "max_age_s" in errors["queue.redeliver_after_s"][0]


def test_redeliver_after_s_must_be_below_deadline_s() -> None:
    errors = refused(queue={"deadline_s": 60})  # the default redeliver_after_s: 120
    assert list(errors) == ["queue.redeliver_after_s"], errors
    assert "deadline_s" in errors["queue.redeliver_after_s"][0]
    settings = load_config(
        env={"GATEWAY_CONFIG": json.dumps({"queue": {"deadline_s": 60, "redeliver_after_s": 30}})}
    ).settings
    assert settings.queue.redeliver_after_s == 30


def test_result_ttl_s_must_cover_max_deadline_s() -> None:
    errors = refused(queue={"result_ttl_s": 3599})  # the default max_deadline_s: 3600
    assert list(errors) == ["queue.result_ttl_s"], errors
    assert "max_deadline_s" in errors["queue.result_ttl_s"][0]
    ok = {"queue": {"result_ttl_s": 600, "max_deadline_s": 600}}
    assert load_config(env={"GATEWAY_CONFIG": json.dumps(ok)}).settings.queue.result_ttl_s == 600


SENTINEL = "sentinel://10.0.0.1:26379/mymaster"


@pytest.mark.parametrize(
    ("env", "doc", "path"),
    [
        ({}, {"redis": {"url": SENTINEL}}, "redis.url"),
        ({"REDIS_URL": SENTINEL}, {}, "redis.url"),
        ({"CELERY_BROKER_URL": SENTINEL}, {}, "broker.url"),
        ({}, {"broker": {"url": "sentinel://a:26379;sentinel://b:26379"}}, "broker.url"),
    ],
)
def test_a_sentinel_url_is_refused_naming_the_sentinel_variables(
    env: dict[str, str], doc: dict[str, Any], path: str
) -> None:
    errors = refused(env, **doc)
    assert path in errors, errors
    text = " ".join(errors[path])
    assert "REDIS_SENTINELS" in text and "REDIS_SENTINEL_MASTER" in text


def test_allow_eviction_is_off_by_default_and_read_from_the_file(tmp_path: Path) -> None:
    assert load_config(env={}).settings.redis_allow_eviction is False
    path = tmp_path / "gateway.yaml"
    path.write_text("redis: {allow_eviction: true}\n")
    assert load_config(path, env={}).settings.redis_allow_eviction is True
    errors = refused(redis={"allow_eviction": "sometimes"})
    assert "redis.allow_eviction" in errors, errors
