"""The response cache's key and policy, and the token estimate."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from shared.config.loader import load_config
from shared.config.settings import CacheSettings, Settings
from shared.state.cache import cache_digest, parse_cache_control, policy
from shared.state.job_record import Job
from shared.state.ratelimit import estimate_tokens, format_duration
from workers.runner import JobRunner

BASE = {"model": "glm-4.6", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}


def test_digest_ignores_key_order_and_fields_that_do_not_change_the_answer() -> None:
    reordered = {
        "temperature": 0,
        "messages": [{"content": "hi", "role": "user"}],
        "model": "glm-4.6",
    }
    assert cache_digest(BASE) == cache_digest(reordered)
    for extra in (
        {"user": "u1"},
        {"metadata": {"a": 1}},
        {"stream": False},
        {"stream": True, "stream_options": {"include_usage": True}},  # assembled in full
        {"gateway": {}},
        {"service_tier": "auto"},
    ):
        assert cache_digest({**BASE, **extra}) == cache_digest(BASE)


def test_digest_changes_with_everything_that_shapes_the_answer() -> None:
    variants = [
        {**BASE, "model": "glm-4.5"},
        {**BASE, "messages": [{"role": "user", "content": "hi!"}]},
        {**BASE, "temperature": 0.5},
        {**BASE, "max_tokens": 10},
        {**BASE, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {**BASE, "response_format": {"type": "json_object"}},
        {**BASE, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
        {**BASE, "seed": 1},
        {**BASE, "n": 2},
        {**BASE, "logprobs": True},
        {**BASE, "logprobs": True, "top_logprobs": 2},
        {**BASE, "stop": ["x"]},
        {**BASE, "stop": ["x", "y"]},
    ]
    digests = {cache_digest(v) for v in variants}
    assert len(digests) == len(variants) and cache_digest(BASE) not in digests


def test_policy_deterministic_only_by_default() -> None:
    on = CacheSettings()
    assert policy(on, BASE).lookup
    assert policy(on, {**BASE, "temperature": None, "seed": 7}).lookup
    assert not policy(on, {**BASE, "temperature": 0.7}).lookup
    assert policy(CacheSettings(deterministic_only=False), {**BASE, "temperature": 0.7}).lookup
    assert not policy(CacheSettings(enabled=False), BASE).lookup


def test_policy_honours_cache_control_and_the_gateway_option() -> None:
    s = CacheSettings()
    assert not policy(s, BASE, cache_control="no-cache").lookup
    assert policy(s, BASE, cache_control="no-cache").store
    assert not policy(s, BASE, cache_control="No-Store").store
    assert policy(s, BASE, cache_control="no-store").lookup
    assert not policy(s, BASE, option="no-cache").lookup
    assert not policy(s, BASE, option="no-store").store
    assert policy(s, BASE, cache_control="max-age=30").max_age_s == 30
    assert not policy(s, BASE, cache_control="max-age=0").lookup
    assert parse_cache_control("max-age=abc, no-store") == ({"no-store"}, None)


def test_token_estimate_counts_prompt_and_completion_cap() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}
    assert estimate_tokens(body) == 104 + 50
    assert estimate_tokens({**body, "n": 2}) == 104 + 100
    assert estimate_tokens({"messages": []}) == 0


def test_durations_read_like_openai() -> None:
    assert format_duration(0.02) == "20ms"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(360) == "6m0s"
    assert format_duration(0) == "0s"


def _job(options: dict[str, str] | None, **request: object) -> Job:
    body = {**BASE, **request}
    return Job(
        id="job_x",
        owner="t",
        status="running",
        priority="interactive",
        model="glm-4.6",
        request=body,
        created_at=0,
        deadline_at=1,
        options=options,
    )


def _settings(doc: dict[str, Any]) -> Settings:
    return load_config(env={}, overrides=doc).settings


def test_the_worker_stores_what_a_later_request_may_hit() -> None:
    doc: dict[str, Any] = {
        "providers": {"p": {"type": "mock", "base_url": "http://x"}},
        "models": {"glm-4.6": [{"provider": "p", "model": "m"}]},
        "fallbacks": {"order": ["alternative_provider"]},  # no stale fallback to store for
    }
    runner = JobRunner(SimpleNamespace(settings=_settings(doc), stores=SimpleNamespace(jobs=None)))  # type: ignore[arg-type]
    assert runner._cacheable(_job(None))
    assert runner._cacheable(_job({"cache": "no-cache"}))  # skipped the lookup, still stored
    assert not runner._cacheable(_job({"cache": "no-store"}))
    assert not runner._cacheable(_job(None, temperature=0.7))  # not deterministic
    doc["fallbacks"] = {"order": ["alternative_provider", "cached_response"]}
    runner = JobRunner(SimpleNamespace(settings=_settings(doc), stores=SimpleNamespace(jobs=None)))  # type: ignore[arg-type]
    assert runner._cacheable(_job(None, temperature=0.7))  # kept for the stale fallback
