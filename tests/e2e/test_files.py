"""OpenAI's Files API through the official openai client, against running API processes:
contents in Redis, scoped to the key, bounded, served by any API process after a restart."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from urllib.parse import unquote

import openai
import pytest
import redis

from tests.support.clients import AUTH, CLIENT_KEY, OTHER_KEY
from tests.support.stack import KEYS, Stack, StackFactory


def _client(stack: Stack, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{stack.api_url}/v1", max_retries=0, timeout=60)


def _batch_lines(n: int, tag: str) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"{tag}-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "mock-model", "messages": [{"role": "user", "content": "é" * i}]},
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def test_upload_list_read_download_delete(stack: Stack, unique: str) -> None:
    client = _client(stack)
    # Over 2 MiB: several chunks, and multi-byte characters cut at a chunk's edge.
    content = _batch_lines(3000, unique)
    assert len(content) > 2 * (1 << 20)
    created = client.files.create(file=(f"{unique}.jsonl", content), purpose="batch")
    assert created.id.startswith("file-") and created.object == "file"
    assert created.bytes == len(content) and created.purpose == "batch"
    assert created.filename == f"{unique}.jsonl" and created.status == "processed"

    assert client.files.retrieve(created.id).model_dump() == created.model_dump()
    assert client.files.content(created.id).read() == content  # byte for byte
    listed = client.files.list(purpose="batch")
    assert created.id in [f.id for f in listed.data]

    other = _client(stack, OTHER_KEY)  # another key sees nothing of it
    with pytest.raises(openai.NotFoundError):
        other.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        other.files.delete(created.id)
    assert created.id not in [f.id for f in other.files.list().data]

    deleted = client.files.delete(created.id)
    assert deleted.id == created.id and deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    r = stack.redis
    assert not r.exists(KEYS.file(created.id), KEYS.file_chunks(created.id))
    assert r.hget(KEYS.files_usage, created.id) is None


def test_the_list_pages_newest_first(stack: Stack, unique: str) -> None:
    client = _client(stack)
    ids = [
        client.files.create(
            file=(f"{unique}-{i}.jsonl", _batch_lines(1, unique)), purpose="batch"
        ).id
        for i in range(3)
    ]
    try:
        page = client.files.list(limit=2)
        assert [f.id for f in page.data] == [ids[2], ids[1]] and page.has_more
        rest = client.files.list(limit=2, after=ids[1])
        assert rest.data[0].id == ids[0]
        oldest_first = [f.id for f in client.files.list(order="asc").data if f.id in ids]
        assert oldest_first == ids
    finally:
        for file_id in ids:
            client.files.delete(file_id)


def test_a_file_named_in_any_script_downloads_under_its_name(stack: Stack, unique: str) -> None:
    # gunicorn refuses a header value outside Latin-1: the name rides as RFC 5987 UTF-8,
    # with an ASCII fallback for clients that read only ``filename``.
    client = _client(stack)
    name = f"数据 résumé {unique}.jsonl"
    content = _batch_lines(2, unique)
    created = client.files.create(file=(name, content), purpose="batch")
    try:
        assert created.filename == name
        got = client.files.content(created.id)
        assert got.read() == content
        disposition = got.response.headers["content-disposition"]
        params = dict(
            part.strip().split("=", 1) for part in disposition.split(";")[1:] if "=" in part
        )
        assert disposition.startswith("attachment;")
        assert params["filename"] == f'"__ resume {unique}.jsonl"'
        charset, _, encoded = params["filename*"].partition("''")
        assert charset == "UTF-8" and unquote(encoded, errors="strict") == name
    finally:
        client.files.delete(created.id)


def test_bad_uploads_get_clear_errors(stack: Stack) -> None:
    client = _client(stack)
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("x.txt", b"{}\n"), purpose="fine-tune")
    assert info.value.body["param"] == "purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("x.jsonl", b""), purpose="batch")
    assert info.value.body["param"] == "file"  # type: ignore[index]


@pytest.fixture(scope="module")
def small(
    make_stack: StackFactory,
) -> Iterator[Stack]:
    """An API whose limits are small enough to reach: 4 KiB a file, 3 lines a batch file,
    10 KiB for every file together."""
    s = make_stack(
        "small-files",
        auth=AUTH,
        files={"store": "redis", "max_bytes": 4096, "redis_max_bytes": 10240},
        batches={"max_lines": 3, "max_bytes": 4096},
    )
    try:
        s.start_api()
        yield s
    finally:
        s.stop()


def test_limits_answer_413_400_and_507_and_keep_nothing(small: Stack) -> None:
    client = _client(small)
    with pytest.raises(openai.APIStatusError) as info:
        client.files.create(file=("big.jsonl", b"x" * 5000), purpose="batch")
    assert info.value.status_code == 413
    assert info.value.body["code"] == "file_too_large"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as info:
        client.files.create(file=("long.jsonl", b"{}\n" * 4), purpose="batch")
    assert info.value.body["code"] == "too_many_lines"  # type: ignore[index]
    # 3 KiB files: three fit in 10 KiB, the fourth does not, and says so.
    kept = [
        client.files.create(file=(f"f{i}.jsonl", b"y" * 3000 + b"\n"), purpose="batch").id
        for i in range(3)
    ]
    with pytest.raises(openai.APIStatusError) as info:
        client.files.create(file=("f3.jsonl", b"y" * 3000 + b"\n"), purpose="batch")
    assert info.value.status_code == 507
    assert info.value.body["code"] == "files_storage_full"  # type: ignore[index]
    assert info.value.response.headers.get("x-should-retry") == "false"
    r = redis.Redis.from_url(small.redis_url, decode_responses=True)
    assert int(r.hget(KEYS.files_usage, "#total") or 0) == 3 * 3001  # the refused left nothing
    client.files.delete(kept[0])  # room again
    client.files.create(file=("f4.jsonl", b"y" * 3000 + b"\n"), purpose="batch")


def test_files_outlive_the_api_process(small: Stack) -> None:
    client = _client(small)
    created = client.files.create(file=("keep.jsonl", b'{"a": 1}\n'), purpose="batch")
    for proc in [p for p in small.procs if p.name == "api"]:
        proc.stop()
        small.procs.remove(proc)
    small.start_api()  # a new process, on another port: the file is in Redis
    client = _client(small)
    assert client.files.retrieve(created.id).bytes == len(b'{"a": 1}\n')
    assert client.files.content(created.id).read() == b'{"a": 1}\n'
    assert io.BytesIO(client.files.content(created.id).read()).readline() == b'{"a": 1}\n'
