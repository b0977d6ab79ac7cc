"""Config layers above the environment (Redis, HTTP source), live refresh, the admin API.

fakeredis and an in-process HTTP transport; a running fleet picking up a change is proved in
tests/integration/test_live_config.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import httpx
import pytest
from flask.testing import FlaskClient

from gateway_api.app import create_app
from gateway_api.services import Services
from shared import metrics
from shared.config.secret_box import new_key as new_secret_key
from shared.config.sources import ConfigSources
from shared.config.store import KEEP_VERSIONS, ConfigStore, check_layer, merge_patch
from shared.config.watcher import ConfigWatcher
from shared.errors import ConfigError
from tests.support.api import Published
from tests.support.clients import ADMIN_KEY, AUTH, CLIENT_KEY

PROVIDER_SECRET = "sk-provider-secret-" + "9" * 20
BASE = {
    "providers": {
        "p": {"type": "mock", "base_url": "http://127.0.0.1:9/v1", "api_key": PROVIDER_SECRET}
    },
    "models": {"m": [{"provider": "p", "model": "x"}]},
    "auth": AUTH,
}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CLIENT = {"Authorization": f"Bearer {CLIENT_KEY}"}


def sources_for(
    doc: dict[str, Any] | None = None,
    http: Callable[[httpx.Request], httpx.Response] | None = None,
    env: dict[str, str] | None = None,
    client: fakeredis.FakeRedis | None = None,
) -> ConfigSources:
    return ConfigSources(
        env={"GATEWAY_CONFIG": json.dumps(doc or BASE), **(env or {})},
        client=client or fakeredis.FakeRedis(decode_responses=True),
        http=httpx.Client(transport=httpx.MockTransport(http)) if http else None,
    )


# -- merge patch and the layer rules -----------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7396 appendix A (a selection)
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


@pytest.mark.parametrize(
    ("layer", "source", "path"),
    [
        ({"providers": {"p": {"api_key": "sk-literal"}}}, "redis", "providers.p.api_key"),
        ({"metrics": {"token": "scrape-secret"}}, "redis", "metrics.token"),
        (
            {"refresh": {"http_source": {"url": "http://c", "token": "t"}}},
            "redis",
            "refresh.http_source.token",
        ),
        ({"redis": {"url": "redis://elsewhere:6379/0"}}, "redis", "redis"),
        ({"broker": {"url": "amqp://x"}}, "redis", "broker"),
        ({"redis": {"prefix": "other"}}, "http", "redis"),
        ({"refresh": {"http_source": {"url": "http://other"}}}, "http", "refresh.http_source"),
    ],
)
def test_dynamic_layers_refuse_secrets_in_clear_and_moving_redis(
    layer: dict[str, Any], source: str, path: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check_layer(layer, source)
    assert path in info.value.errors, info.value.errors


def test_a_secret_reference_is_stored_and_resolved_by_each_process() -> None:
    check_layer({"providers": {"p": {"api_key": "${P_API_KEY}"}}}, "redis")
    client = fakeredis.FakeRedis(decode_responses=True)
    writer = sources_for(client=client)
    ref = {"providers": {"p": {"api_key": "${P_API_KEY}"}}}
    writer.write(lambda layer: merge_patch(layer, ref), "t", "ref")
    stored = json.dumps([v.layer for v in ConfigStore(client, writer.keys).versions()])
    assert "${P_API_KEY}" in stored
    assert "resolved-key" not in stored
    worker = sources_for(client=client, env={"P_API_KEY": "resolved-key"})
    assert worker.load().settings.providers["p"].api_key == "resolved-key"
    api = sources_for(client=client)  # no P_API_KEY here: the key stays unknown to this process
    assert api.load().settings.providers["p"].api_key is None


def test_with_a_secret_key_a_literal_secret_is_stored_sealed() -> None:
    key = new_secret_key()
    client = fakeredis.FakeRedis(decode_responses=True)
    writer = sources_for(client=client, env={"GATEWAY_SECRET_KEY": key})
    patch = {"providers": {"p": {"api_key": "sk-live-literal-123"}}}
    writer.write(lambda layer: merge_patch(layer, patch), "t", "sealed")
    raw = json.dumps(client.hgetall(writer.keys.config_versions))
    assert "sk-live-literal-123" not in raw and "enc:v1:" in raw
    # A worker with the key opens it; the API without it gets no value; a wrong key is an
    # error naming the field (the process keeps its config, as for any bad refresh).
    worker = sources_for(client=client, env={"GATEWAY_SECRET_KEY": key})
    assert worker.load().settings.providers["p"].api_key == "sk-live-literal-123"
    assert sources_for(client=client).load().settings.providers["p"].api_key is None
    wrong = sources_for(client=client, env={"GATEWAY_SECRET_KEY": new_secret_key()})
    with pytest.raises(ConfigError) as info:
        wrong.load()
    assert "providers.p.api_key" in info.value.errors
    # Without a key where the change is made, a literal is refused (422 on the admin API).
    with pytest.raises(ConfigError):
        sources_for(client=client).write(lambda layer: merge_patch(layer, patch), "t", "x")


def test_a_bad_secret_key_is_reported_clearly() -> None:
    with pytest.raises(ConfigError) as info:
        sources_for(env={"GATEWAY_SECRET_KEY": "not-a-key"})
    assert "GATEWAY_SECRET_KEY" in info.value.errors


# -- precedence --------------------------------------------------------------------------------
def test_redis_then_http_override_the_static_layers() -> None:
    served = {
        "queue": {"deadline_s": 190},
        "models": {"from-http": [{"provider": "p", "model": "h"}]},
    }
    seen: list[str] = []

    def config_api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200, json=served)

    doc = {
        **BASE,
        "refresh": {
            "interval_s": 10,
            "http_source": {"url": "https://cfg/layer", "token": "cfg-token"},
        },
    }
    sources = sources_for(doc, http=config_api)
    sources.write(
        lambda layer: merge_patch(layer, {"queue": {"deadline_s": 160, "max_age_s": 130}}), "t", "x"
    )
    loaded = sources.load()
    assert loaded.settings.queue.deadline_s == 190  # http over redis
    assert loaded.settings.queue.max_age_s == 130  # redis over the static layers
    assert loaded.sources["queue.deadline_s"] == "http"
    assert loaded.sources["queue.max_age_s"] == "redis"
    assert set(loaded.settings.models) == {"m", "from-http"}  # maps merge deeply
    assert loaded.redis_version == 1
    assert seen and seen[-1] == "Bearer cfg-token"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.Response(500, text="oops"), "HTTP 500"),
        (httpx.Response(200, text="{not json"), "invalid JSON"),
    ],
)
def test_an_unreachable_or_bad_config_api_stops_the_start_clearly(
    answer: httpx.Response | Exception, fragment: str
) -> None:
    def config_api(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    doc = {**BASE, "refresh": {"interval_s": 10, "http_source": {"url": "https://cfg/layer"}}}
    with pytest.raises(ConfigError) as info:
        sources_for(doc, http=config_api).load()
    assert fragment in " ".join(info.value.errors["refresh.http_source.url"])


# -- the watcher -------------------------------------------------------------------------------
def test_the_watcher_applies_valid_changes_and_refuses_bad_ones() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    sources = sources_for(client=client)
    applied: list[str] = []
    watcher = ConfigWatcher(
        sources, sources.load(), lambda new: applied.append(new.settings.version)
    )
    assert watcher.refresh() == "unchanged"

    sources.write(lambda layer: merge_patch(layer, {"queue": {"deadline_s": 420}}), "t", "ok")
    assert watcher.refresh() == "applied"
    assert watcher.current.settings.queue.deadline_s == 420
    good = watcher.current.settings.version
    assert applied == [good]

    # A layer that validates nowhere (written around the API's checks) is refused: the
    # old config serves on, and the refusal is counted.
    store = ConfigStore(client, sources.keys)
    bad = {"providers": {"p": {"timeout_s": 0}}}
    store.put(bad, store.current_number(), "someone", "raw write")
    refused_before = metrics.CONFIG_RELOADS.labels("refused")._value.get()
    assert watcher.refresh() == "refused"
    assert watcher.current.settings.version == good
    assert "providers.p.timeout_s" in (watcher.last_error or {})
    assert metrics.CONFIG_RELOADS.labels("refused")._value.get() == refused_before + 1
    assert applied == [good]


def test_a_failing_http_source_keeps_its_last_answer_on_refresh() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.Response(200, json={"queue": {"deadline_s": 177}})
    ]

    def config_api(request: httpx.Request) -> httpx.Response:
        answer = answers[-1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    doc = {**BASE, "refresh": {"interval_s": 10, "http_source": {"url": "https://cfg/layer"}}}
    sources = sources_for(doc, http=config_api)
    watcher = ConfigWatcher(sources, sources.load(), lambda new: None)
    assert watcher.current.settings.queue.deadline_s == 177
    answers.append(httpx.ConnectError("down"))
    assert watcher.refresh() == "unchanged"
    assert watcher.current.settings.queue.deadline_s == 177
    answers.append(httpx.Response(200, json={"queue": {"deadline_s": 166}}))
    assert watcher.refresh() == "applied"
    assert watcher.current.settings.queue.deadline_s == 166


# -- the store ---------------------------------------------------------------------------------
def test_concurrent_writers_lose_no_change() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    a, b = sources_for(client=client), sources_for(client=client)
    raced = False

    def change_a(layer: dict[str, Any]) -> dict[str, Any]:
        nonlocal raced
        if not raced:  # b writes between a's read and a's write
            raced = True
            b.write(lambda lb: merge_patch(lb, {"queue": {"max_age_s": 310}}), "b", "b")
        return merge_patch(layer, {"queue": {"deadline_s": 410}})

    version = a.write(change_a, "a", "a")
    assert version == 2
    q = a.load().settings.queue
    assert (q.deadline_s, q.max_age_s) == (410, 310)


def test_versions_are_bounded() -> None:
    sources = sources_for()
    store = sources.store()
    for i in range(KEEP_VERSIONS + 5):
        store.put({"queue": {"deadline_s": 10 + i}}, i, "t", str(i))
    kept = store.versions()
    assert len(kept) == KEEP_VERSIONS
    assert kept[0].number == KEEP_VERSIONS + 5 and kept[-1].number == 6


# -- the admin API -----------------------------------------------------------------------------
@pytest.fixture
def admin_app() -> Iterator[FlaskClient]:
    client = fakeredis.FakeRedis(decode_responses=True)
    sources = sources_for(client=client)
    services = Services.build(sources.load(), client=client, sources=sources, publish=Published())
    yield create_app(services=services).test_client()


def chat(app: FlaskClient, model: str) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {**CLIENT, "Prefer": "respond-async"}
    return app.post("/v1/chat/completions", json=body, headers=headers).status_code


def test_admin_paths_need_an_admin_key(admin_app: FlaskClient) -> None:
    for method, path in (
        ("get", "/admin/config"),
        ("patch", "/admin/config"),
        ("get", "/admin/config/versions"),
        ("post", "/admin/config/rollback"),
    ):
        call = getattr(admin_app, method)
        assert call(path, json={}).status_code == 401
        denied = call(path, json={}, headers=CLIENT)
        assert denied.status_code == 403, path
        assert denied.get_json()["error"]["type"] == "permission_error"
        assert call(path, json={}, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_admin_api_is_closed_without_admin_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {**BASE, "auth": {**AUTH, "admin_keys": []}}
    client = fakeredis.FakeRedis(decode_responses=True)
    sources = sources_for(doc, client=client)
    app = create_app(services=Services.build(sources.load(), client=client, sources=sources))
    resp = app.test_client().get("/admin/config", headers=ADMIN)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "admin_disabled"


def test_get_config_is_redacted_with_sources(admin_app: FlaskClient) -> None:
    resp = admin_app.get("/admin/config", headers=ADMIN)
    assert resp.status_code == 200
    assert PROVIDER_SECRET not in resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["config"]["providers"]["p"]["api_key"] == "***"
    assert body["sources"]["providers.p.api_key"] == "env:GATEWAY_CONFIG"
    assert body["sources"]["queue.deadline_s"] == "default"
    assert body["redis_version"] == 0


def test_patch_adds_a_model_then_rollback_removes_it(admin_app: FlaskClient) -> None:
    assert chat(admin_app, "new-alias") == 404
    patch = {
        "models": {"new-alias": [{"provider": "p", "model": "y"}]},
        "queue": {"deadline_s": 450},
    }
    resp = admin_app.patch(
        "/admin/config",
        data=json.dumps(patch),
        headers={**ADMIN, "Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["written_version"] == 1 and body["redis_version"] == 1
    assert body["sources"]["queue.deadline_s"] == "redis"
    assert PROVIDER_SECRET not in resp.get_data(as_text=True)
    assert chat(admin_app, "new-alias") == 202  # served at once by this process
    assert chat(admin_app, "m") == 202  # maps merged: the file's model is still there

    # A second patch deletes a key of the first (null), keeping the rest.
    resp = admin_app.patch("/admin/config", json={"queue": {"deadline_s": None}}, headers=ADMIN)
    assert resp.get_json()["sources"]["queue.deadline_s"] == "default"
    assert chat(admin_app, "new-alias") == 202

    versions = admin_app.get("/admin/config/versions", headers=ADMIN).get_json()
    assert versions["current"] == 2
    assert [v["version"] for v in versions["data"]] == [2, 1]
    assert versions["data"][0]["actor"] == "admin:ops" and versions["data"][0]["current"]
    assert versions["data"][1]["layer"]["queue"] == {"deadline_s": 450}

    back = admin_app.post("/admin/config/rollback", json={"version": 0}, headers=ADMIN)
    assert back.status_code == 200 and back.get_json()["redis_version"] == 3
    assert chat(admin_app, "new-alias") == 404
    again = admin_app.post("/admin/config/rollback", json={"version": 1}, headers=ADMIN)
    assert again.status_code == 200
    assert chat(admin_app, "new-alias") == 202
    assert (
        admin_app.get("/admin/config", headers=ADMIN).get_json()["config"]["queue"]["deadline_s"]
        == 450
    )


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"providers": {"p": {"timeout_s": 500}}}, "providers.p.timeout_s"),
        ({"models": {"bad": [{"provider": "ghost", "model": "x"}]}}, "models.bad.0.provider"),
        ({"providers": {"p": {"api_key": "sk-in-clear"}}}, "providers.p.api_key"),
        ({"redis": {"url": "redis://elsewhere/0"}}, "redis"),
        ({"queue": {"deadline_s": "soon"}}, "queue.deadline_s"),
    ],
)
def test_an_invalid_patch_is_422_naming_the_field_and_changes_nothing(
    admin_app: FlaskClient, patch: dict[str, Any], param: str
) -> None:
    before = admin_app.get("/admin/config", headers=ADMIN).get_json()
    resp = admin_app.patch("/admin/config", json=patch, headers=ADMIN)
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert (error["code"], error["param"]) == ("invalid_config", param)
    assert param in error["errors"]
    assert "sk-in-clear" not in resp.get_data(as_text=True)
    assert admin_app.get("/admin/config", headers=ADMIN).get_json() == before
    assert admin_app.get("/admin/config/versions", headers=ADMIN).get_json()["data"] == []
    assert chat(admin_app, "m") == 202


def test_patch_and_rollback_bodies_are_checked(admin_app: FlaskClient) -> None:
    assert admin_app.patch("/admin/config", data="[1]", headers=ADMIN).status_code == 400
    bad = admin_app.post("/admin/config/rollback", json={"version": "1"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "version"
    missing = admin_app.post("/admin/config/rollback", json={"version": 99}, headers=ADMIN)
    assert missing.status_code == 404


def test_file_edits_apply_live_but_moving_redis_needs_a_restart(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gateway.yaml"
    base = {k: v for k, v in BASE.items() if k != "auth"}
    path.write_text(json.dumps({**base, "queue": {"deadline_s": 130}}))
    sources = ConfigSources(path, env={}, client=fakeredis.FakeRedis(decode_responses=True))
    watcher = ConfigWatcher(sources, sources.load(), lambda new: None)

    path.write_text(
        json.dumps({**base, "queue": {"deadline_s": 131}, "worker": {"concurrency": 9}})
    )
    assert watcher.refresh() == "applied"
    assert watcher.current.settings.queue.deadline_s == 131
    assert "worker.concurrency changed; takes effect on restart" in caplog.text

    path.write_text(json.dumps({**base, "redis": {"prefix": "elsewhere"}}))
    assert watcher.refresh() == "refused"
    assert watcher.last_error == {"redis": ["changing this needs a restart"]}
    assert watcher.current.settings.queue.deadline_s == 131


def test_unknown_fields_are_refused_from_the_redis_layer_and_the_http_source() -> None:
    sources = sources_for()
    with pytest.raises(ConfigError) as caught:
        sources.write(lambda layer: merge_patch(layer, {"retry": {"max_atempts": 9}}), "t", "x")
    assert "retry.max_atempts" in caught.value.errors

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"cache": {"enabeld": False}})

    doc = {**BASE, "refresh": {"interval_s": 10, "http_source": {"url": "https://cfg/layer"}}}
    with pytest.raises(ConfigError) as caught:
        sources_for(doc, http=answer).load()
    assert "cache.enabeld" in caught.value.errors


def test_a_stored_layer_that_no_longer_validates_is_skipped_at_start_and_reported() -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    sources = sources_for(client=client)
    store = ConfigStore(client, sources.keys)
    store.put({"retry": {"max_atempts": 9}}, store.current_number(), "old-version", "raw")
    with pytest.raises(ConfigError):
        sources.load()  # what `config check` reports
    loaded = sources.load_at_start()  # what a starting process does
    assert loaded.redis_version == 0
    assert loaded.settings.retry.max_attempts == 3
    watcher = ConfigWatcher(sources, loaded, lambda new: None)
    assert "retry.max_atempts" in (watcher.last_error or {})
    assert watcher.refresh() == "refused"
