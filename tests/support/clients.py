"""The client API keys every stack is configured with, and their ``auth`` section."""

from __future__ import annotations

import hashlib

CLIENT_KEY = "sk-test-client-" + "a" * 24
OTHER_KEY = "sk-test-other-" + "b" * 24
ADMIN_KEY = "sk-test-admin-" + "c" * 24


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


AUTH = {
    "keys": [
        {"id": "team-a", "key_sha256": sha(CLIENT_KEY)},
        {"id": "team-b", "key_sha256": sha(OTHER_KEY)},
    ],
    "admin_keys": [{"id": "ops", "key_sha256": sha(ADMIN_KEY)}],
}
