"""Secrets in the Redis config layer, sealed with ``GATEWAY_SECRET_KEY`` (a Fernet key:
AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package).

A literal secret written to the Redis layer (``config set providers.z-ai.api_key ...``, an
admin PATCH) is stored as ``enc:v1:<token>``; each process holding the same key opens it when
it loads the config. A process without the key gets no value (as for an unset ``${VAR}``), so
the API, which never calls a provider, does not need the key at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from shared.errors import ConfigError

SEALED = "enc:v1:"
ENV_NAME = "GATEWAY_SECRET_KEY"


def new_key() -> str:
    return Fernet.generate_key().decode()


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED)


class SecretBox:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                {ENV_NAME: ["not a key this gateway made (llm-gateway keys secret-key)"]}
            ) from exc

    def seal(self, value: str) -> str:
        return SEALED + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str, path: str) -> str:
        try:
            return self._fernet.decrypt(value[len(SEALED) :].encode()).decode()
        except InvalidToken as exc:
            raise ConfigError(
                {path: [f"sealed with another {ENV_NAME} than this process has"]}
            ) from exc


def box_from(env: Mapping[str, str]) -> SecretBox | None:
    key = env.get(ENV_NAME)
    return SecretBox(key) if key else None


def _walk(doc: Any, leaf: Any, path: str = "") -> Any:
    if isinstance(doc, Mapping):
        return {k: _walk(v, leaf, f"{path}.{k}" if path else str(k)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_walk(v, leaf, f"{path}.{i}") for i, v in enumerate(doc)]
    return leaf(doc, path)


def seal_secrets(layer: Mapping[str, Any], box: SecretBox, fields: frozenset[str]) -> Any:
    """Seal every literal secret (not a ``${VAR}`` reference, not sealed already)."""

    def leaf(value: Any, path: str) -> Any:
        name = path.rsplit(".", 1)[-1]
        literal = isinstance(value, str) and value and not value.startswith(("${", SEALED))
        return box.seal(value) if name in fields and literal else value

    return _walk(layer, leaf)


def open_secrets(layer: Mapping[str, Any], box: SecretBox | None) -> Any:
    """Every sealed value opened (None without a key)."""

    def leaf(value: Any, path: str) -> Any:
        if not is_sealed(value):
            return value
        return box.open(value, path) if box is not None else None

    return _walk(layer, leaf)
