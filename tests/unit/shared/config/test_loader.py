from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config.defaults import DEFAULTS
from shared.config.layers import deep_merge, substitute_env
from shared.config.loader import load_config
from shared.config.redact import redact
from shared.errors import ConfigError

MOCK = {"type": "mock", "base_url": "http://127.0.0.1:9/v1"}


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_alone_are_valid_and_match_design() -> None:
    loaded = load_config(env={})
    s = loaded.settings
    assert s.retry.max_attempts == 3 and s.retry.base_delay_s == 1.0
    assert s.queue.result_ttl_s == 86400 and s.queue.deadline_s == 300
    assert s.worker.concurrency == 500 and s.worker.shutdown_grace_s == 8
    assert s.limits.max_body_bytes == 10 * 1024 * 1024
    assert s.broker_url == s.redis_url == "redis://127.0.0.1:6379/0"
    assert loaded.document["breaker"]["consecutive_failures"] == 5


@pytest.mark.parametrize("suffix", ["yaml", "json", "toml"])
def test_file_formats(tmp_path: Path, suffix: str) -> None:
    doc = {
        "providers": {"m": MOCK},
        "models": {"x": [{"provider": "m", "model": "y"}]},
        "queue": {"deadline_s": 420},
    }
    if suffix == "toml":
        text = (
            '[providers.m]\ntype = "mock"\nbase_url = "http://127.0.0.1:9/v1"\n'
            '[[models.x]]\nprovider = "m"\nmodel = "y"\n[queue]\ndeadline_s = 420\n'
        )
    else:
        text = json.dumps(doc)
    s = load_config(write(tmp_path, f"c.{suffix}", text), env={}).settings
    assert s.queue.deadline_s == 420
    assert s.models["x"][0].model == "y"
    assert s.queue.max_deadline_s == 3600  # deep merge keeps the rest of the section


def test_env_substitution_with_defaults() -> None:
    env = {"KEY": "secret", "EMPTY": ""}
    assert substitute_env("${KEY}", env) == "secret"
    assert substitute_env("${MISSING}", env) is None
    assert substitute_env("${MISSING:-fallback}", env) == "fallback"
    assert substitute_env("${EMPTY:-x}", env) == "x"
    assert substitute_env({"a": ["pre-${KEY}-post"]}, env) == {"a": ["pre-secret-post"]}


def test_layer_precedence(tmp_path: Path) -> None:
    f = write(
        tmp_path, "c.yaml", "queue: {deadline_s: 130, max_age_s: 131}\nworker: {concurrency: 7}\n"
    )
    env = {
        "GATEWAY__QUEUE__DEADLINE_S": "200",
        "GATEWAY__WORKER__CONCURRENCY": "8",
        "GATEWAY_CONFIG": json.dumps({"worker": {"concurrency": 9}}),
        "REDIS_URL": "redis://10.0.0.1:6380/2",
    }
    loaded = load_config(f, env=env)
    s = loaded.settings
    assert s.queue.deadline_s == 200  # GATEWAY__ beats the file
    assert s.queue.max_age_s == 131  # untouched file value survives the merge
    assert s.worker.concurrency == 9  # GATEWAY_CONFIG beats GATEWAY__
    assert s.redis_url == "redis://10.0.0.1:6380/2"
    assert loaded.sources["queue.deadline_s"] == "env:GATEWAY__"
    assert loaded.sources["queue.max_age_s"] == "file"
    assert loaded.sources["worker.concurrency"] == "env:GATEWAY_CONFIG"


def test_original_environment_names_create_providers_and_models() -> None:
    env = {
        "ZAI_API_KEY": "zk",
        "OPENAI_API_KEY": "ok",
        "LITELLM_PROXY_URL": "http://litellm:4000",
        "LITELLM_PROXY_API_KEY": "lk",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    }
    s = load_config(env=env).settings
    assert s.providers["z-ai"].type == "zai" and s.providers["z-ai"].api_key == "zk"
    assert s.providers["z-ai"].base_url == "https://api.z.ai/api/paas/v4"
    assert s.providers["openai"].api_key == "ok"
    assert s.providers["litellm-proxy"].base_url == "http://litellm:4000"
    assert s.providers["litellm-proxy"].api_key == "lk"
    assert s.broker_url.startswith("amqp://")
    assert s.models["glm-4.6"][0].provider == "z-ai"
    assert s.default_model in s.models


def test_env_key_does_not_override_a_file_providers_url(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "c.yaml",
        "providers: {z-ai: {type: zai, base_url: 'https://open.bigmodel.cn/api/paas/v4'}}\n",
    )
    s = load_config(f, env={"ZAI_API_KEY": "zk"}).settings
    assert s.providers["z-ai"].base_url == "https://open.bigmodel.cn/api/paas/v4"
    assert s.providers["z-ai"].api_key == "zk"


@pytest.mark.parametrize(
    ("override", "path", "fragment"),
    [
        (
            {"providers": {"p": {**MOCK, "timeout_s": 301}}},
            "providers.p.timeout_s",
            "less than or equal to 300",
        ),
        ({"providers": {"p": {**MOCK, "base_url": "not a url"}}}, "providers.p.base_url", "URL"),
        (
            {"providers": {"p": {"type": "carrier-pigeon", "base_url": "http://x"}}},
            "providers.p.type",
            "one of",
        ),
        (
            {"models": {"m": [{"provider": "ghost", "model": "x"}]}},
            "models.m.0.provider",
            "not configured",
        ),
        ({"default_model": "nope"}, "default_model", "not configured"),
        ({"queue": {"deadline_s": 5000}}, "queue.deadline_s", "max_deadline_s"),
        ({"auth": {"keys": [{"id": "a", "key_sha256": "short"}]}}, "auth.keys.0.key_sha256", "hex"),
        ({"worker": {"concurrency": "lots"}}, "worker.concurrency", "integer"),
    ],
)
def test_validation_names_the_dotted_field(override: dict, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"GATEWAY_CONFIG": json.dumps(override)})
    assert path in info.value.errors, info.value.errors
    assert fragment.lower() in " ".join(info.value.errors[path]).lower()
    assert path in str(info.value)


def test_bad_gateway_config_json_is_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={"GATEWAY_CONFIG": "{not json"})
    assert "GATEWAY_CONFIG" in info.value.errors


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml", env={})
    assert "file" in info.value.errors


def test_redact_hides_secrets_and_url_passwords() -> None:
    doc = deep_merge(
        DEFAULTS,
        {
            "providers": {"p": {**MOCK, "api_key": "sk-very-secret"}},
            "redis": {"url": "rediss://user:hunter2@redis:6380/0"},
            "metrics": {"token": "tok"},
        },
    )
    text = json.dumps(redact(doc))
    assert "sk-very-secret" not in text and "hunter2" not in text and '"tok"' not in text
    assert "rediss://user:***@redis:6380/0" in text


def test_version_changes_with_content() -> None:
    a = load_config(env={}).settings.version
    b = load_config(env={"GATEWAY__QUEUE__DEADLINE_S": "299"}).settings.version
    assert a != b and len(a) == 12


@pytest.mark.parametrize(
    ("override", "path", "meant"),
    [
        (
            {"auth": {"keys": [{"id": "a", "key_sha256": "0" * 64, "rmp": 5}]}},
            "auth.keys.0.rmp",
            "rpm",
        ),
        ({"retry": {"max_atempts": 9}}, "retry.max_atempts", "max_attempts"),
        ({"retyr": {"max_attempts": 9}}, "retyr", "retry"),
        (
            {"providers": {"p": {"type": "mock", "base_url": "http://x/v1", "timeout": 5}}},
            "providers.p.timeout",
            "timeout_s",
        ),
        ({"models": {"m": [{"provider": "p", "modle": "x"}]}}, "models.m.0.modle", "model"),
    ],
)
def test_an_unknown_field_is_refused_naming_what_was_probably_meant(
    override: dict, path: str, meant: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, overrides=override)
    assert path in caught.value.errors
    assert f"did you mean {meant!r}" in caught.value.errors[path][0]


def test_unknown_fields_are_refused_from_every_static_layer(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queue: {dedline_s: 30}\n")
    for env, path in [
        ({"GATEWAY_CONFIG_FILE": str(cfg)}, "queue.dedline_s"),
        ({"GATEWAY__WORKER__CONCURENCY": "5"}, "worker.concurency"),
        ({"GATEWAY_CONFIG": json.dumps({"cache": {"ttl": 5}})}, "cache.ttl"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(env=env)
        assert path in caught.value.errors, env


def test_x_prefixed_keys_are_operators_notes_and_ignored() -> None:
    loaded = load_config(env={}, overrides={"x-owner": "ops", "queue": {"x-why": "slow"}})
    assert "x-owner" not in loaded.document
    assert loaded.settings.queue.deadline_s == DEFAULTS["queue"]["deadline_s"]


def test_a_config_that_sets_nothing_gets_each_settings_dataclass_default() -> None:
    """One source for each default: the settings dataclasses. The defaults layer, the schema
    and the loader add none of their own."""
    from shared.config import settings as S

    s = load_config(env={}).settings
    sections = {
        "auth": S.AuthSettings(),
        "limits": S.LimitsSettings(),
        "queue": S.QueueSettings(),
        "worker": S.WorkerSettings(),
        "retry": S.RetrySettings(),
        "breaker": S.BreakerSettings(),
        "health": S.HealthSettings(),
        "fallbacks": S.FallbackSettings(),
        "cache": S.CacheSettings(),
        "streaming": S.StreamingSettings(),
        "files": S.FilesSettings(),
        "batches": S.BatchesSettings(),
        "webhooks": S.WebhooksSettings(),
        "refresh": S.RefreshSettings(),
        "metrics": S.MetricsSettings(),
        "cors": S.CorsSettings(),
        "config": S.ConfigSettings(),
    }
    for name, default in sections.items():
        assert getattr(s, name) == default, name
    provider = load_config(
        env={"GATEWAY_CONFIG": '{"providers": {"p": {"type": "mock", "base_url": "http://x/v1"}}}'}
    ).settings.providers["p"]
    assert provider == S.ProviderSettings(name="p", type="mock", base_url="http://x/v1")
