"""What a live config change may not do, against a real Redis with the admin API in-process:
read the fleet's environment back through ``${VAR}`` (only secret fields of the Redis layer and
the HTTP source name variables, and only those ``config.env_allow`` lets through), or leave the
gateway without client keys while ``auth.open`` is not true (the admin API answers 422, the
watcher keeps the config it has)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from flask.testing import FlaskClient

from gateway_api.app import LOOPBACK_BIND_ENV, create_app
from gateway_api.services import Services
from shared.config.loader import LoadedConfig
from shared.config.secret_box import new_key as new_secret_key
from shared.config.sources import ConfigSources
from shared.config.watcher import ConfigWatcher
from tests.support.api import Published
from tests.support.clients import ADMIN_KEY, AUTH, CLIENT_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}
SECRET_KEY = new_secret_key()  # the fleet's GATEWAY_SECRET_KEY: it opens every sealed secret
PROVIDER_KEY = "sk-provider-from-env-" + "7" * 16
HOME = "/home/fleet-user-secret-path"
ENV = {"GATEWAY_SECRET_KEY": SECRET_KEY, "SOME_API_KEY": PROVIDER_KEY, "HOME": HOME}
ADMINS_ONLY = {"admin_keys": AUTH["admin_keys"]}  # no client keys in the file


def document(redis_url: str, **sections: Any) -> dict[str, Any]:
    return {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        "auth": AUTH,
        "redis": {"url": redis_url},
        **sections,
    }


class Gateway:
    """One API process in-process over the suite's Redis, with the given file-like document
    and environment."""

    def __init__(
        self,
        redis_url: str,
        doc: dict[str, Any],
        env: dict[str, str] | None = None,
        http: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.sources = ConfigSources(
            env={"GATEWAY_CONFIG": json.dumps(doc), **(ENV if env is None else env)},
            client=self.client,
            http=httpx.Client(transport=httpx.MockTransport(http)) if http else None,
        )
        self.services = Services.build(
            self.sources.load_at_start(),
            client=self.client,
            sources=self.sources,
            publish=Published(),
        )
        self.app: FlaskClient = create_app(services=self.services).test_client()

    def chat(self, headers: dict[str, str] | None = None) -> int:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        prefer = {"Prefer": "respond-async"}
        resp = self.app.post(
            "/v1/chat/completions", json=body, headers={**prefer, **(headers or {})}
        )
        return resp.status_code

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def make_gateway(redis_db: str) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(doc: dict[str, Any] | None = None, **kw: Any) -> Gateway:
        gw = Gateway(redis_db, doc or document(redis_db), **kw)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


# -- F6: ${VAR} in the Redis layer ---------------------------------------------------------------
def test_a_patch_cannot_read_an_environment_variable_into_a_plain_field(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway()
    resp = gw.app.patch(
        "/admin/config",
        json={"fallbacks": {"degraded_answer": "${GATEWAY_SECRET_KEY}"}},
        headers=ADMIN,
    )
    assert SECRET_KEY not in resp.get_data(as_text=True)
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert (error["code"], error["param"]) == ("invalid_config", "fallbacks.degraded_answer")
    shown = gw.app.get("/admin/config", headers=ADMIN)
    assert SECRET_KEY not in shown.get_data(as_text=True)
    assert gw.app.get("/admin/config/versions", headers=ADMIN).get_json()["data"] == []


def test_a_provider_key_reference_in_the_redis_layer_still_resolves(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway()
    resp = gw.app.patch(
        "/admin/config", json={"providers": {"p": {"api_key": "${SOME_API_KEY}"}}}, headers=ADMIN
    )
    assert resp.status_code == 200, resp.get_json()
    assert PROVIDER_KEY not in resp.get_data(as_text=True)
    assert resp.get_json()["config"]["providers"]["p"]["api_key"] == "***"
    assert gw.services.settings.providers["p"].api_key == PROVIDER_KEY
    # Stored as the reference, never as the value.
    stored = json.dumps(gw.client.hgetall(gw.sources.keys.config_versions))
    assert "${SOME_API_KEY}" in stored and PROVIDER_KEY not in stored


def test_an_api_key_naming_a_variable_outside_env_allow_is_refused(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway()
    resp = gw.app.patch(
        "/admin/config", json={"providers": {"p": {"api_key": "${HOME}"}}}, headers=ADMIN
    )
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert error["param"] == "providers.p.api_key"
    assert "config.env_allow" in error["message"]
    assert HOME not in resp.get_data(as_text=True)
    assert gw.services.settings.providers["p"].api_key is None


def test_env_allow_is_set_by_the_file_and_environment_never_by_the_redis_layer(
    redis_db: str, make_gateway: Callable[..., Gateway]
) -> None:
    widen = make_gateway().app.patch(
        "/admin/config", json={"config": {"env_allow": ["*"]}}, headers=ADMIN
    )
    assert widen.status_code == 422 and widen.get_json()["error"]["param"] == "config.env_allow"

    narrow = make_gateway(
        document(redis_db, config={"env_allow": ["FLEET_*"]}),
        env={**ENV, "FLEET_KEY": "sk-fleet-key"},
    )
    ok = narrow.app.patch(
        "/admin/config", json={"providers": {"p": {"api_key": "${FLEET_KEY}"}}}, headers=ADMIN
    )
    assert ok.status_code == 200, ok.get_json()
    assert narrow.services.settings.providers["p"].api_key == "sk-fleet-key"
    refused = narrow.app.patch(
        "/admin/config", json={"providers": {"p": {"api_key": "${SOME_API_KEY}"}}}, headers=ADMIN
    )
    assert refused.status_code == 422
    assert refused.get_json()["error"]["param"] == "providers.p.api_key"


# -- F7: no live change leaves the gateway without client keys -----------------------------------
def test_a_patch_that_empties_auth_keys_is_refused_and_keys_stay_required(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway()
    assert gw.chat() == 401
    resp = gw.app.patch("/admin/config", json={"auth": {"keys": []}}, headers=ADMIN)
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert error["param"] == "auth.keys" and "auth.open" in error["message"]
    assert gw.chat() == 401
    assert gw.chat(CLIENT) == 202


def test_with_auth_open_a_patch_may_remove_every_client_key(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway()
    resp = gw.app.patch("/admin/config", json={"auth": {"keys": [], "open": True}}, headers=ADMIN)
    assert resp.status_code == 200, resp.get_json()
    assert gw.chat() == 202


def test_a_rollback_that_would_drop_the_keys_kept_in_the_redis_layer_is_refused(
    redis_db: str, make_gateway: Callable[..., Gateway]
) -> None:
    gw = make_gateway(document(redis_db, auth=ADMINS_ONLY))
    added = gw.app.patch("/admin/config", json={"auth": {"keys": AUTH["keys"]}}, headers=ADMIN)
    assert added.status_code == 200, added.get_json()
    assert gw.chat() == 401

    back = gw.app.post("/admin/config/rollback", json={"version": 0}, headers=ADMIN)
    assert back.status_code == 422, back.get_json()
    assert back.get_json()["error"]["param"] == "auth.keys"
    assert gw.chat() == 401
    assert gw.sources.store().current_number() == 1


def test_the_watcher_keeps_its_config_when_the_redis_layer_would_leave_no_keys(
    make_gateway: Callable[..., Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    gw = make_gateway()
    applied: list[LoadedConfig] = []
    watcher = ConfigWatcher(gw.sources, gw.services.loaded, applied.append)
    store = gw.sources.store()
    # Written around the admin API (an older version, a script): every process must refuse it.
    store.put({"auth": {"keys": []}}, store.current_number(), "script", "raw")
    with caplog.at_level(logging.ERROR, logger="shared.config.watcher"):
        assert watcher.refresh() == "refused"
    assert applied == []
    assert [k.id for k in watcher.current.settings.auth.keys] == ["team-a", "team-b"]
    assert "auth.keys" in (watcher.last_error or {})
    assert "auth.keys" in caplog.text and "change refused" in caplog.text


def test_the_watcher_refuses_an_http_answer_that_would_leave_no_keys(
    redis_db: str, make_gateway: Callable[..., Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    answers = [{"auth": {"keys": AUTH["keys"]}}]

    def config_api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[-1])

    refresh = {"interval_s": 10, "http_source": {"url": "https://cfg.example/layer"}}
    gw = make_gateway(document(redis_db, auth=ADMINS_ONLY, refresh=refresh), http=config_api)
    watcher = ConfigWatcher(gw.sources, gw.services.loaded, gw.services.apply)
    assert gw.chat() == 401  # the keys come from the HTTP source

    answers.append({"models": {"m2": [{"provider": "p", "model": "y"}]}})  # no keys any more
    with caplog.at_level(logging.ERROR, logger="shared.config.watcher"):
        assert watcher.refresh() == "refused"
    assert "auth.keys" in (watcher.last_error or {}) and "auth.keys" in caplog.text
    assert gw.chat() == 401
    assert "m2" not in gw.services.settings.models

    answers.append({**answers[-1], "auth": {"keys": AUTH["keys"]}})  # keys back: applied
    assert watcher.refresh() == "applied"
    assert "m2" in gw.services.settings.models


@pytest.mark.parametrize(("bind", "status"), [("0", 401), ("1", 202)])
def test_a_served_api_without_keys_lets_requests_in_only_on_a_loopback_bind(
    redis_db: str, monkeypatch: pytest.MonkeyPatch, bind: str, status: int
) -> None:
    """A gunicorn worker (re)started while the config has no client keys (its HTTP source
    dropped them, say): on a public bind it refuses every /v1 request instead of serving."""
    doc = document(redis_db, auth=ADMINS_ONLY)
    monkeypatch.setenv("GATEWAY_CONFIG", json.dumps(doc))
    monkeypatch.delenv("GATEWAY_CONFIG_FILE", raising=False)
    monkeypatch.setenv(LOOPBACK_BIND_ENV, bind)
    app = create_app(live=True)
    services: Services = app.extensions["gateway"]
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        resp = app.test_client().post(
            "/v1/jobs", json={"request": body}, headers={"Prefer": "respond-async"}
        )
        assert resp.status_code == status, resp.get_json()
    finally:
        assert services.watcher is not None
        services.watcher.stop()
