"""``llm-gateway batch submit FILE.jsonl [--wait]``: upload a batch file, create the batch,
and with ``--wait`` show its progress and download the output and error files, for people
who would rather not write the SDK calls. Speaks the gateway's OpenAI API over HTTP (the
same calls ``client.files.create`` and ``client.batches.*`` make)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
POLL_S = 1.0
ENDED = ("completed", "failed", "expired", "cancelled")


class BatchCommandError(Exception):
    pass


def _check(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        raise BatchCommandError(f"{resp.request.method} {resp.request.url.path}: {message}")
    return resp.json()


def submit(
    path: str,
    url: str | None,
    api_key: str | None,
    wait: bool,
    output: str | None,
    errors: str | None,
    metadata: list[str],
) -> int:
    base = (url or os.environ.get("LLM_GATEWAY_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("LLM_GATEWAY_API_KEY") or os.environ.get("OPENAI_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    source = Path(path)
    meta = dict(m.split("=", 1) for m in metadata)
    try:
        with httpx.Client(base_url=f"{base}/v1", headers=headers, timeout=600) as http:
            with source.open("rb") as f:
                uploaded = _check(
                    http.post("/files", data={"purpose": "batch"}, files={"file": (source.name, f)})
                )
            batch = _check(
                http.post(
                    "/batches",
                    json={
                        "input_file_id": uploaded["id"],
                        "endpoint": "/v1/chat/completions",
                        "completion_window": "24h",
                        **({"metadata": meta} if meta else {}),
                    },
                )
            )
            print(f"{batch['id']} {batch['status']} (file {uploaded['id']})", flush=True)
            if not wait:
                return 0
            batch = _follow(http, batch)
            return _download(http, batch, source, output, errors)
    except (BatchCommandError, httpx.HTTPError, OSError) as exc:
        print(f"llm-gateway batch: {exc}", file=sys.stderr)
        return 1


def _follow(http: httpx.Client, batch: dict[str, Any]) -> dict[str, Any]:
    """Poll until the batch ends, with a progress bar on stderr."""
    from tqdm import tqdm

    with tqdm(total=None, unit="req", desc=batch["id"], file=sys.stderr, leave=True) as bar:
        while True:
            counts = batch.get("request_counts") or {}
            if counts.get("total"):
                bar.total = counts["total"]
            bar.n = (counts.get("completed") or 0) + (counts.get("failed") or 0)
            bar.set_postfix(status=batch["status"], failed=counts.get("failed") or 0)
            bar.refresh()
            if batch["status"] in ENDED:
                return batch
            time.sleep(POLL_S)
            batch = _check(http.get(f"/batches/{batch['id']}"))


def _download(
    http: httpx.Client,
    batch: dict[str, Any],
    source: Path,
    output: str | None,
    errors: str | None,
) -> int:
    stem = source.with_suffix("")
    for field, given, suffix in (
        ("output_file_id", output, ".output.jsonl"),
        ("error_file_id", errors, ".errors.jsonl"),
    ):
        file_id = batch.get(field)
        if not file_id:
            continue
        target = Path(given or f"{stem}{suffix}")
        with http.stream("GET", f"/files/{file_id}/content") as resp:
            if resp.status_code >= 400:
                resp.read()
                _check(resp)
            with target.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        print(f"{field.removesuffix('_file_id')}: {target}", flush=True)
    counts = batch.get("request_counts") or {}
    print(
        f"{batch['id']} {batch['status']}: {counts.get('completed', 0)} completed, "
        f"{counts.get('failed', 0)} failed of {counts.get('total', 0)}",
        flush=True,
    )
    if batch["status"] == "failed":
        for e in (batch.get("errors") or {}).get("data") or []:
            print(f"  line {e.get('line')}: {e.get('code')}: {e.get('message')}", file=sys.stderr)
    return 0 if batch["status"] == "completed" else 1
