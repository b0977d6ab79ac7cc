"""``llm-gateway keys new`` and ``keys secret-key``."""

from __future__ import annotations

import hashlib
import secrets


def new_key() -> int:
    key = "sk-gw-" + secrets.token_urlsafe(32)
    digest = hashlib.sha256(key.encode()).hexdigest()
    print(f"key:        {key}")
    print(f"key_sha256: {digest}")
    print("Give the key to the client; put only the hash in config:")
    print(f'  auth: {{keys: [{{id: my-team, key_sha256: "{digest}"}}]}}')
    return 0


def new_secret_key() -> int:
    from shared.config.secret_box import new_key as fernet_key

    key = fernet_key()
    print(f"GATEWAY_SECRET_KEY={key}")
    print("Set it in the environment of every worker (and wherever `config set` or the admin")
    print("API writes secrets): literal secrets written to the Redis layer are stored sealed.")
    return 0
