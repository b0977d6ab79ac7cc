"""No secret in Redis (task messages, job records, any key) or in any process's logs."""

from __future__ import annotations

from tests.support import web
from tests.support.clients import CLIENT_KEY
from tests.support.stack import PROVIDER_SECRET, Stack

H = {"Authorization": f"Bearer {CLIENT_KEY}"}


def _dump(stack: Stack) -> str:
    r = stack.redis
    parts: list[str] = []
    for key in r.scan_iter(count=1000):
        parts.append(key)
        kind = r.type(key)
        if kind == "string":
            parts.append(str(r.get(key)))
        elif kind == "hash":
            parts.append(str(r.hgetall(key)))
        elif kind == "list":
            parts.append(str(r.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(str(r.smembers(key)))
        elif kind == "zset":
            parts.append(str(r.zrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(str(r.xrange(key)))
    return "\n".join(parts)


def test_no_client_or_provider_key_in_redis_or_logs(stack: Stack, unique: str) -> None:
    # Successes, failures, and a job left queued in the broker (so its task message is there).
    web.post(
        f"{stack.api_url}/v1/chat/completions",
        headers=H,
        timeout=30,
        json={"messages": [{"role": "user", "content": unique}]},
    )
    web.post(
        f"{stack.api_url}/v1/chat/completions",
        headers=H,
        timeout=30,
        json={
            "model": "glm-4.6",
            "messages": [{"role": "user", "content": unique}],
            "mock": {"status": 401, "code": "1002"},
        },
    )
    web.post(
        f"{stack.api_url}/v1/jobs",
        headers=H,
        json={
            "request": {
                "messages": [{"role": "user", "content": unique}],
                "mock": {"latency_ms": 2000},
            }
        },
    )
    dump = _dump(stack)
    assert unique in dump  # the scan does see job contents
    assert CLIENT_KEY not in dump
    assert PROVIDER_SECRET not in dump
    for proc in stack.procs:
        text = proc.log_path.read_text(errors="replace")
        assert CLIENT_KEY not in text, proc.name
        assert PROVIDER_SECRET not in text, proc.name
