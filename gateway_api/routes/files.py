"""OpenAI's Files API (``client.files.*``): upload, list, read, download, delete; scoped to the
calling key (another key's file is 404). The content lives in Redis
(``shared/batch/file_store.py``), so any API process serves any file and files outlive API
restarts."""

from __future__ import annotations

import os
import re
import unicodedata
from typing import IO
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request, stream_with_context

from gateway_api.responses import page
from gateway_api.routes import incoming
from gateway_api.services import current_services
from shared.batch.file_store import KeyFull, StoredFile, StoreFull, TooManyLines, UploadTooSlow
from shared.errors import InvalidRequest, NotFound, PayloadTooLarge, StorageFull

bp = Blueprint("files", __name__)
PURPOSES = ("batch",)  # the Batch API's input; other purposes have no use in a gateway
# So every upload is a batch file, bounded by both sections' limits.
MAX_PAGE = 10000  # OpenAI's limit for GET /v1/files
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the purpose field, beyond the file


def _not_found(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", code="file_not_found", param="id")


def _filename(raw: str | None) -> str:
    """The client's file name, safe to echo in a header (no quotes, controls; 255 at most)."""
    return re.sub(r'[\x00-\x1f\x7f"\\]', "_", raw or "upload")[:255] or "upload"


def _disposition(filename: str) -> str:
    """``Content-Disposition`` for a download (RFC 6266): the name as UTF-8 in ``filename*``
    (RFC 5987), and an ASCII stand-in in ``filename`` for clients that read only that one
    (accents dropped, other characters ``_``). A header value must be Latin-1, and gunicorn
    refuses anything else, so the raw name never goes into the header."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
        for c in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(c)
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _size(stream: IO[bytes]) -> int:
    """The uploaded part's size (werkzeug spools it to memory or a temporary file)."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


@bp.post("/v1/files")
def upload() -> Response:
    services = current_services()
    principal = incoming.client(services)
    s = services.settings
    bound = min(s.files.max_bytes, s.batches.max_bytes)
    # Uploads have their own bound, not the chat routes' limits.max_body_bytes.
    request.max_content_length = bound + FORM_OVERHEAD
    purpose = request.form.get("purpose")
    if purpose is None:
        raise InvalidRequest("purpose: a purpose is required", param="purpose")
    if purpose not in PURPOSES:
        raise InvalidRequest(
            f"purpose: must be one of {', '.join(PURPOSES)} (got {purpose!r})", param="purpose"
        )
    part = request.files.get("file")
    if part is None:
        raise InvalidRequest("file: a file part is required (multipart/form-data)", param="file")
    size = _size(part.stream)
    if size > bound:
        raise PayloadTooLarge(
            f"file: {size} bytes is over the limit of {bound} bytes",
            code="file_too_large",
            param="file",
        )
    if size == 0:
        raise InvalidRequest("file: the file is empty", param="file")
    try:
        stored = services.stores.files.put(
            principal.key_id,
            _filename(part.filename),
            purpose,
            part.stream,
            size,
            s.batches.max_lines,
        )
    except TooManyLines as exc:
        raise InvalidRequest(
            f"file: a batch file holds at most {exc.limit} lines",
            code="too_many_lines",
            param="file",
        ) from exc
    except KeyFull as exc:  # the key's own bound: 413, as an upload over files.max_bytes is
        raise PayloadTooLarge(
            f"file: {size} bytes do not fit in this API key's file storage: its files hold "
            f"{exc.used} bytes of the {exc.bound} it may hold (files.max_bytes_per_key); "
            "delete files to make room.",
            code="files_quota_exceeded",
            param="file",
        ) from exc
    except StoreFull as exc:
        raise StorageFull(
            f"The file store is full ({exc.used} of {exc.bound} bytes in use); delete files "
            "or raise files.redis_max_bytes."
        ) from exc
    except UploadTooSlow as exc:
        raise InvalidRequest("file: the upload took too long; send it again") from exc
    return jsonify(stored.to_public())


def _own(file_id: str) -> StoredFile:
    services = current_services()
    principal = incoming.client(services)
    stored = services.stores.files.get(principal.key_id, file_id)
    if stored is None:
        raise _not_found(file_id)
    return stored


@bp.get("/v1/files/<file_id>")
def retrieve(file_id: str) -> Response:
    return jsonify(_own(file_id).to_public())


@bp.get("/v1/files/<file_id>/content")
def content(file_id: str) -> Response:
    stored = _own(file_id)
    chunks = current_services().stores.files.content(stored.id)
    resp = Response(stream_with_context(chunks), mimetype="application/octet-stream")
    resp.headers["Content-Length"] = str(stored.bytes)
    resp.headers["Content-Disposition"] = _disposition(stored.filename)
    return resp


@bp.delete("/v1/files/<file_id>")
def delete(file_id: str) -> Response:
    services = current_services()
    principal = incoming.client(services)
    if not services.stores.files.delete(principal.key_id, file_id):
        raise _not_found(file_id)
    return jsonify({"id": file_id, "object": "file", "deleted": True})


@bp.get("/v1/files")
def list_files() -> Response:
    services = current_services()
    principal = incoming.client(services)
    limit = incoming.page_limit(MAX_PAGE, MAX_PAGE)
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order: must be 'asc' or 'desc'", param="order")
    files, more, resume = services.stores.files.page(
        principal.key_id,
        limit,
        request.args.get("after"),
        order == "asc",
        request.args.get("purpose"),
    )
    return page([f.to_public() for f in files], more, resume)
