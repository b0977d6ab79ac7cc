"""Who may in, in-process: the dashboard asks for an admin sign-in whenever admin keys exist
(loopback too), a dashboard session lasts only while its admin key does, and a process that
started with client keys never serves a request without one."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
from flask.testing import FlaskClient

from gateway_api.app import create_app
from gateway_api.services import Services
from shared.config.loader import load_config
from shared.config.sources import ConfigSources
from tests.support.api import OK, Published, make_app
from tests.support.clients import ADMIN_KEY, AUTH, CLIENT_KEY, sha

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SECOND_ADMIN_KEY = "sk-test-admin-two-" + "d" * 24
NEW_OPS_KEY = "sk-test-admin-new-" + "e" * 24
TWO_ADMINS = {
    **AUTH,
    "admin_keys": [*AUTH["admin_keys"], {"id": "ops-2", "key_sha256": sha(SECOND_ADMIN_KEY)}],
}
ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


def app_with(auth: dict[str, Any]) -> FlaskClient:
    """The API over fakeredis with every config layer live (admin PATCH applies at once)."""
    doc = {
        "providers": {"p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"m": [{"provider": "p", "model": "x"}]},
        "auth": auth,
    }
    client = fakeredis.FakeRedis(decode_responses=True)
    sources = ConfigSources(env={"GATEWAY_CONFIG": json.dumps(doc)}, client=client)
    services = Services.build(sources.load(), client=client, sources=sources, publish=Published())
    return create_app(services=services).test_client()


def sign_in(app: FlaskClient, key: str) -> None:
    assert app.post("/dashboard/login", data={"key": key}).status_code == 303


def test_with_admin_keys_the_dashboard_needs_a_sign_in_even_on_loopback() -> None:
    app = app_with({"admin_keys": AUTH["admin_keys"]})  # no client keys: /v1 runs open
    assert app.get("/dashboard/data").status_code == 401
    assert 'action="/dashboard/login"' in app.get("/dashboard").get_data(as_text=True)
    assert app.get("/dashboard/data", headers=ADMIN).status_code == 200
    sign_in(app, ADMIN_KEY)
    assert app.get("/dashboard/data").status_code == 200


def test_without_any_key_the_dashboard_is_open_on_loopback_only() -> None:
    app = app_with({})
    assert app.get("/dashboard/data").status_code == 200
    assert app.get("/dashboard/data", environ_base=ELSEWHERE).status_code == 401


def test_revoking_an_admin_key_ends_its_dashboard_sessions() -> None:
    app = app_with(TWO_ADMINS)
    sign_in(app, ADMIN_KEY)
    assert app.get("/dashboard/data").status_code == 200
    second = {"Authorization": f"Bearer {SECOND_ADMIN_KEY}"}
    revoke = {"auth": {"admin_keys": [TWO_ADMINS["admin_keys"][1]]}}
    assert app.patch("/admin/config", json=revoke, headers=second).status_code == 200
    assert app.get("/dashboard/data").status_code == 401
    assert 'action="/dashboard/login"' in app.get("/dashboard").get_data(as_text=True)
    assert app.get("/dashboard/jobs/job_x").status_code == 401


def test_a_new_key_under_the_same_id_ends_the_old_keys_sessions() -> None:
    app = app_with(TWO_ADMINS)
    sign_in(app, ADMIN_KEY)
    second = {"Authorization": f"Bearer {SECOND_ADMIN_KEY}"}
    rotated = {
        "auth": {
            "admin_keys": [
                {"id": "ops", "key_sha256": sha(NEW_OPS_KEY)},
                TWO_ADMINS["admin_keys"][1],
            ]
        }
    }
    assert app.patch("/admin/config", json=rotated, headers=second).status_code == 200
    assert app.get("/dashboard/data").status_code == 401
    sign_in(app, NEW_OPS_KEY)
    assert app.get("/dashboard/data").status_code == 200


def test_a_process_that_started_with_keys_never_serves_without_one() -> None:
    """Whatever path a config without client keys took to reach the process (every live path
    refuses it; this is the last line), requests are refused, not let in."""
    app = make_app()
    services: Services = app.extensions["gateway"]
    doc = {**services.loaded.document, "auth": {"admin_keys": AUTH["admin_keys"]}}
    services.apply(load_config(env={"GATEWAY_CONFIG": json.dumps(doc)}))
    client = app.test_client()
    resp = client.post("/v1/chat/completions", json=OK, headers={"Prefer": "respond-async"})
    assert resp.status_code == 401, resp.get_json()
    assert resp.get_json()["error"]["type"] == "authentication_error"
    keyed = {"Prefer": "respond-async", "Authorization": f"Bearer {CLIENT_KEY}"}
    assert client.post("/v1/chat/completions", json=OK, headers=keyed).status_code == 401


def test_a_process_that_started_open_serves_open() -> None:
    app = make_app(auth={"keys": [], "admin_keys": []}).test_client()
    resp = app.post("/v1/chat/completions", json=OK, headers={"Prefer": "respond-async"})
    assert resp.status_code == 202, resp.get_json()
