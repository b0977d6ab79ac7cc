"""The webhook target guard (no internal addresses unless allowed) and the signature, checked
by the official SDK's verifier."""

from __future__ import annotations

import base64
import time

import openai
import pytest

from shared.webhooks import delivery_id, event_id, signature
from workers.webhook_target import Refused, check

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.100.100.200/latest/meta-data",  # shared address space (a cloud's metadata)
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",  # multicast
        "http://[2002:7f00:1::1]/hook",  # 6to4 around 127.0.0.1
        "http://[2002:a00:1::1]/hook",  # 6to4 around 10.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 around 169.254.169.254
        "http://[fec0::1]/hook",  # site-local
        "ftp://example.com/hook",
        "http:///nohost",
    ],
)
def test_internal_or_odd_targets_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        check(url, allow_private=False)


def test_public_addresses_pass_and_allow_private_opens_loopback() -> None:
    check("https://93.184.216.34/hook", allow_private=False)
    check("https://[2002:5db8:d822::1]/hook", allow_private=False)  # 6to4 around a public one
    check("https://[64:ff9b::5db8:d822]/hook", allow_private=False)  # NAT64 around a public one
    check("http://127.0.0.1:9/hook", allow_private=True)
    with pytest.raises(Refused):  # the scheme is checked even then
        check("file:///etc/passwd", allow_private=True)


def test_signatures_verify_with_the_official_sdk() -> None:
    body = (
        b'{"id":"evt_1","object":"event","type":"batch.completed","created_at":1,'
        b'"data":{"id":"batch_1"}}'
    )
    ts = int(time.time())
    other = "whsec_" + base64.b64encode(b"z" * 32).decode()
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": signature([SECRET, other], "evt_1", ts, body),
    }
    client = openai.OpenAI(api_key="unused")
    event = client.webhooks.unwrap(body, headers, secret=SECRET)
    assert event.type == "batch.completed" and event.data.id == "batch_1"
    client.webhooks.verify_signature(body, headers, secret=other)  # either secret verifies
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.verify_signature(body + b" ", headers, secret=SECRET)


def test_ids_are_fixed_by_what_happened() -> None:
    assert event_id("batch:batch_1") == event_id("batch:batch_1") != event_id("batch:batch_2")
    e = event_id("job:job_1")
    assert delivery_id(e, "https://a/x") != delivery_id(e, "https://b/x")
