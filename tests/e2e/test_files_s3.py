"""files.store: s3 against a real S3-compatible server the suite starts (moto's standalone
server, over HTTP): the openai client's uploads land as objects, downloads stream back, and a
delete removes the object with the record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from moto.server import ThreadedMotoServer

from gateway_cli.embedded_redis import free_port
from tests.support.clients import AUTH, CLIENT_KEY, OTHER_KEY
from tests.support.stack import KEYS, Stack, StackFactory

BUCKET = "gateway-files"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    try:
        yield url, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_stack(
    make_stack: StackFactory,
    s3: tuple[str, Any],
) -> Iterator[Stack]:
    url, _ = s3
    stack = make_stack(
        "s3-files",
        auth=AUTH,
        files={
            "store": "s3",
            # A bound far below the file sizes: it applies to contents in Redis only.
            "redis_max_bytes": 1000,
            "s3": {"bucket": BUCKET, "prefix": "t/", "endpoint_url": url, "region": "us-east-1"},
        },
    )
    stack.env.update(CREDENTIALS)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_contents_live_in_the_object_store(s3_stack: Stack, s3: tuple[str, Any]) -> None:
    _, bucket = s3
    client = openai.OpenAI(api_key=CLIENT_KEY, base_url=f"{s3_stack.api_url}/v1", max_retries=0)
    # 9 MiB: more than boto3's 8 MiB multipart threshold, so it goes up in parts.
    content = b"".join(b'{"custom_id": "%d", "x": "%s"}\n' % (i, b"y" * 900) for i in range(10_500))
    assert len(content) > 9 * (1 << 20)
    created = client.files.create(file=("big.jsonl", content), purpose="batch")
    assert created.bytes == len(content)
    head = bucket.head_object(Bucket=BUCKET, Key=f"t/{created.id}")
    assert head["ContentLength"] == len(content)
    assert not s3_stack.redis.exists(KEYS.file_chunks(created.id))  # nothing in Redis
    assert client.files.content(created.id).read() == content

    other = openai.OpenAI(api_key=OTHER_KEY, base_url=f"{s3_stack.api_url}/v1", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.files.content(created.id)

    client.files.delete(created.id)
    listed = bucket.list_objects_v2(Bucket=BUCKET, Prefix="t/")
    assert listed.get("KeyCount", 0) == 0


def test_too_many_lines_leaves_no_object(s3_stack: Stack, s3: tuple[str, Any]) -> None:
    _, bucket = s3
    client = openai.OpenAI(api_key=CLIENT_KEY, base_url=f"{s3_stack.api_url}/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("long.jsonl", b"{}\n" * 50_001), purpose="batch")
    assert info.value.body["code"] == "too_many_lines"  # type: ignore[index]
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="t/").get("KeyCount", 0) == 0
