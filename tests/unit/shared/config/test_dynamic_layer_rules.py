"""Rules the real loader applies to the layers that change at run time (the Redis layer and the
HTTP config source), and to the HTTP source's address: fakeredis and an in-process HTTP
transport. The admin API and the watcher against a real Redis: tests/integration/
test_config_guards.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest

from shared.config.loader import load_config
from shared.config.redact import describe
from shared.config.sources import ConfigSources
from shared.config.store import ConfigStore
from shared.config.watcher import ConfigWatcher
from shared.errors import ConfigError
from tests.support.clients import AUTH

MOCK = {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}
BASE = {"providers": {"p": MOCK}, "models": {"m": [{"provider": "p", "model": "x"}]}, "auth": AUTH}
SOURCE = {"interval_s": 10, "http_source": {"url": "https://cfg.example/layer"}}
ENV = {"SOME_API_KEY": "sk-from-env-123", "CFG_TOKEN": "tok-from-env", "HOME": "/home/secret"}


def sources_for(
    doc: dict[str, Any] | None = None,
    answers: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> ConfigSources:
    """Sources over ``doc`` (as GATEWAY_CONFIG) with, when ``answers`` is given, an HTTP source
    that answers its last item."""
    http = None
    if answers is not None:
        doc = {**(doc or BASE), "refresh": SOURCE}
        served = answers

        def config_api(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json=served[-1])

        http = httpx.Client(transport=httpx.MockTransport(config_api))
    return ConfigSources(
        env={"GATEWAY_CONFIG": json.dumps(doc or BASE), **(ENV if env is None else env)},
        client=fakeredis.FakeRedis(decode_responses=True),
        http=http,
    )


def errors_of(load: Callable[[], object]) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as info:
        load()
    return info.value.errors


# -- ${VAR} in the HTTP source -----------------------------------------------------------------
def test_the_http_source_resolves_allowed_variables_in_secret_fields_only() -> None:
    answer = {
        "providers": {"p": {"api_key": "${SOME_API_KEY}"}},
        "metrics": {"token": "${CFG_TOKEN}"},
    }
    loaded = sources_for(answers=[answer]).load()
    assert loaded.settings.providers["p"].api_key == "sk-from-env-123"
    assert loaded.settings.metrics.token == "tok-from-env"
    shown = json.dumps(describe(loaded))
    assert "sk-from-env-123" not in shown and "tok-from-env" not in shown


PLAIN = "only in the secret fields"


@pytest.mark.parametrize(
    ("answer", "path", "fragment"),
    [
        ({"fallbacks": {"degraded_answer": "${SOME_API_KEY}"}}, "fallbacks.degraded_answer", PLAIN),
        ({"providers": {"p": {"base_url": "https://${HOME}/v1"}}}, "providers.p.base_url", PLAIN),
        ({"models": {"m": [{"provider": "p", "model": "${HOME}"}]}}, "models.m.0.model", PLAIN),
        ({"providers": {"p": {"api_key": "${HOME}"}}}, "providers.p.api_key", "config.env_allow"),
        ({"config": {"env_allow": ["*"]}}, "config.env_allow", "file or the environment"),
    ],
)
def test_the_http_source_cannot_read_other_variables(
    answer: dict[str, Any], path: str, fragment: str
) -> None:
    errors = errors_of(sources_for(answers=[answer]).load)
    assert path in errors, errors
    assert fragment in " ".join(errors[path])
    assert "/home/secret" not in json.dumps(errors)


def test_the_file_still_resolves_variables_anywhere(tmp_path: Path) -> None:
    doc = {**BASE, "fallbacks": {"order": ["degraded"], "degraded_answer": "${HOME}"}}
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(doc))
    loaded = load_config(path, env={"HOME": "/home/op"})
    assert loaded.settings.fallbacks.degraded_answer == "/home/op"


def test_env_allow_defaults_to_secret_shaped_names_and_is_validated() -> None:
    assert load_config(env={}).settings.config.env_allow == ("*_API_KEY", "*_TOKEN", "*_SECRET")
    bad = {**BASE, "config": {"env_allow": "*"}}
    assert "config.env_allow" in errors_of(
        lambda: load_config(env={"GATEWAY_CONFIG": json.dumps(bad)})
    )


# -- client keys -------------------------------------------------------------------------------
def test_a_stored_layer_that_takes_away_the_files_keys_is_skipped_at_start() -> None:
    sources = sources_for()
    store = ConfigStore(sources.client, sources.keys)
    store.put({"auth": {"keys": []}}, 0, "script", "raw")
    assert "auth.keys" in errors_of(sources.load)  # what `config check` reports
    loaded = sources.load_at_start()
    assert [k.id for k in loaded.settings.auth.keys] == ["team-a", "team-b"]
    assert loaded.redis_version == 0
    assert "auth.keys" in (sources.refused_at_start or {})


def test_an_http_source_without_keys_cannot_start_a_process_whose_file_has_keys() -> None:
    errors = errors_of(sources_for(answers=[{"auth": {"keys": []}}]).load_at_start)
    assert "auth.keys" in errors and "auth.open" in " ".join(errors["auth.keys"])


def test_a_file_edit_that_removes_the_last_key_is_refused_live(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(BASE))
    sources = ConfigSources(path, env={}, client=fakeredis.FakeRedis(decode_responses=True))
    watcher = ConfigWatcher(sources, sources.load(), lambda new: None)
    path.write_text(json.dumps({**BASE, "auth": {"admin_keys": AUTH["admin_keys"]}}))
    assert watcher.refresh() == "refused"
    assert "auth.keys" in (watcher.last_error or {})
    assert len(watcher.current.settings.auth.keys) == 2
    path.write_text(json.dumps({**BASE, "auth": {"open": True}}))
    assert watcher.refresh() == "applied"  # running open is allowed when said so
    path.write_text(json.dumps({**BASE, "auth": {}}))  # neither keys nor auth.open
    assert watcher.refresh() == "refused"
    assert watcher.current.settings.auth.open


def test_a_process_that_started_open_keeps_applying_changes() -> None:
    """On loopback without keys (the demo), a change that keeps it open opens nothing new."""
    doc = {k: v for k, v in BASE.items() if k != "auth"}
    answers = [{"queue": {"deadline_s": 123}}]
    sources = sources_for(doc, answers=answers)
    watcher = ConfigWatcher(sources, sources.load(), lambda new: None)
    assert watcher.current.settings.queue.deadline_s == 123
    answers.append({"queue": {"deadline_s": 124}})
    assert watcher.refresh() == "applied"
    assert watcher.current.settings.queue.deadline_s == 124


# -- L4: the HTTP source's address ---------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://cfg.example/layer",
        "http://127.0.0.1:8000/layer",
        "http://localhost:8000/layer",
        "http://[::1]:8000/layer",
    ],
)
def test_the_config_api_is_https_or_on_loopback(url: str) -> None:
    doc = {**BASE, "refresh": {"interval_s": 10, "http_source": {"url": url}}}
    loaded = load_config(env={"GATEWAY_CONFIG": json.dumps(doc)})
    assert loaded.settings.refresh.http_source is not None


@pytest.mark.parametrize("url", ["http://cfg.example/layer", "http://10.0.0.5/layer"])
def test_a_plain_http_config_api_is_refused(url: str) -> None:
    doc = {**BASE, "refresh": {"interval_s": 10, "http_source": {"url": url, "token": "t"}}}
    errors = errors_of(lambda: load_config(env={"GATEWAY_CONFIG": json.dumps(doc)}))
    message = " ".join(errors["refresh.http_source.url"])
    assert "https" in message and "loopback" in message
