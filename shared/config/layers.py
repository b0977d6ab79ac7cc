"""The static layers a process reads on its own (defaults, the file, the environment's three)
and their deep merge; each dotted path remembers the layer that set it."""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shared.config.defaults import DEFAULTS, ENV_MODELS, ENV_PROVIDERS
from shared.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# The only fields where the Redis layer and the HTTP source may name an environment variable.
# They are never shown (shared.config.redact), so what they resolve to cannot be read back.
ENV_SECRET_FIELDS = frozenset({"api_key", "token", "secret"})
_DYNAMIC = {"redis": "the Redis layer", "http": "the HTTP source"}


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def substitute_env(value: Any, env: Mapping[str, str]) -> Any:
    """Resolve ``${VAR}`` / ``${VAR:-default}`` in every string; a lone unset ``${VAR}`` is null."""
    if isinstance(value, dict):
        return {k: substitute_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env) for v in value]
    if not isinstance(value, str):
        return value
    whole = _VAR.fullmatch(value)
    if whole and whole.group(2) is None and not env.get(whole.group(1)):
        return None
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def env_allow_of(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """``config.env_allow`` of a merged document; none when it is malformed (the schema names
    the field)."""
    section = doc.get("config")
    value = section.get("env_allow") if isinstance(section, Mapping) else None
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return tuple(value)
    return ()


def resolve_dynamic(
    layer: Mapping[str, Any], env: Mapping[str, str], allow: tuple[str, ...], source: str
) -> dict[str, Any]:
    """A Redis layer or HTTP source answer (``source``: "redis" or "http") with ``${VAR}``
    resolved where such a layer may name a variable: in a secret field (ENV_SECRET_FIELDS), and
    only a variable whose name matches a pattern of ``allow`` (``config.env_allow``, taken from
    the file and the environment). Anywhere else a ``${VAR}`` is a ConfigError naming the field:
    resolved, the value would be shown by ``GET /admin/config`` or sent where the layer says."""
    where = _DYNAMIC.get(source, source)
    errors: dict[str, list[str]] = {}

    def walk(value: Any, path: str, name: str) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else str(k), str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}.{i}", "") for i, v in enumerate(value)]
        names = [m.group(1) for m in _VAR.finditer(value)] if isinstance(value, str) else []
        if not names:
            return value
        if name not in ENV_SECRET_FIELDS:
            errors[path] = [
                f"{where} may name an environment variable (${{VAR}}) only in the secret fields "
                "api_key, token and secret; the file and the environment may anywhere"
            ]
            return value
        denied = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in allow)]
        if denied:
            patterns = ", ".join(allow) or "none"
            errors[path] = [
                f"${{{denied[0]}}} cannot be read by {where}: the variable's name must match "
                f"config.env_allow ({patterns}), which the file or the environment sets"
            ]
            return value
        return substitute_env(value, env)

    resolved: dict[str, Any] = walk(layer, "", "")
    if errors:
        raise ConfigError(errors)
    return resolved


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError({"file": [f"cannot read {p}: {exc.strerror}"]}) from exc
    try:
        if p.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError({"file": [f"cannot parse {p}: {exc}"]}) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError({"file": [f"{p} must hold a mapping at the top level"]})
    return data


def env_named_layer(env: Mapping[str, str], below: Mapping[str, Any]) -> dict[str, Any]:
    """The original design's environment names, mapped onto config paths."""
    layer: dict[str, Any] = {}
    providers: dict[str, Any] = {}
    known = below.get("providers") or {}

    def provider(name: str, **values: Any) -> None:
        entry = {} if name in known else dict(ENV_PROVIDERS[name])
        entry.update({k: v for k, v in values.items() if v})
        providers[name] = entry

    if env.get("ZAI_API_KEY"):
        provider("z-ai", api_key=env["ZAI_API_KEY"], base_url=env.get("ZAI_BASE_URL"))
    if env.get("OPENAI_API_KEY"):
        provider("openai", api_key=env["OPENAI_API_KEY"], base_url=env.get("OPENAI_BASE_URL"))
    if env.get("LITELLM_PROXY_URL"):
        provider(
            "litellm-proxy",
            base_url=env["LITELLM_PROXY_URL"],
            api_key=env.get("LITELLM_PROXY_API_KEY"),
        )
    if providers:
        layer["providers"] = providers
    if env.get("REDIS_URL"):
        layer["redis"] = {"url": env["REDIS_URL"]}
    if env.get("CELERY_BROKER_URL"):
        layer["broker"] = {"url": env["CELERY_BROKER_URL"]}
    return layer


def _parse_scalar(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_override_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """``GATEWAY__QUEUE__DEADLINE_S=30`` -> {"queue": {"deadline_s": 30}}; values parsed as JSON."""
    layer: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("GATEWAY__"):
            continue
        path = [part.lower() for part in name[len("GATEWAY__") :].split("__") if part]
        if not path:
            continue
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_scalar(raw)
    return layer


def env_json_layer(env: Mapping[str, str]) -> dict[str, Any]:
    raw = env.get("GATEWAY_CONFIG")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError({"GATEWAY_CONFIG": [f"invalid JSON: {exc}"]}) from exc
    if not isinstance(data, dict):
        raise ConfigError({"GATEWAY_CONFIG": ["must be a JSON object"]})
    return data


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def default_models(doc: dict[str, Any]) -> None:
    """With no models configured, offer each provider's well-known models (mock: every name)."""
    if doc.get("models"):
        return
    models: dict[str, list[dict[str, str]]] = {}
    for name, prov in (doc.get("providers") or {}).items():
        for model in ENV_MODELS.get(name, []):
            models.setdefault(model, []).append({"provider": name, "model": model})
        if isinstance(prov, dict) and prov.get("type") == "mock":
            models.setdefault("mock-model", []).append({"provider": name, "model": "mock-model"})
    doc["models"] = models
    if not doc.get("default_model") and models:
        doc["default_model"] = next(iter(models))


def static_layers(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """defaults, the file, the environment's three layers: what a process knows on its own."""
    layers: list[tuple[str, dict[str, Any]]] = [("default", DEFAULTS)]
    if path:
        layers.append(("file", substitute_env(read_file(path), env)))
    merged_so_far: dict[str, Any] = {}
    for _, layer in layers:
        merged_so_far = deep_merge(merged_so_far, layer)
    layers.append(("env", env_named_layer(env, merged_so_far)))
    layers.append(("env:GATEWAY__", env_override_layer(env)))
    layers.append(("env:GATEWAY_CONFIG", env_json_layer(env)))
    return layers


def merge_layers(layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The deep merge of ``layers`` in order, and the layer that set each dotted path."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, layer in layers:
        merged = deep_merge(merged, layer)
        for dotted in flatten(layer):
            sources[dotted] = name
    return merged, sources
