"""``llm-gateway keys new``."""

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
