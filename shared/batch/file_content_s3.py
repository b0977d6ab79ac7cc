"""File contents in an S3-compatible object store (AWS S3, MinIO, R2, moto...), through boto3:
one object per file under ``files.s3.prefix``; large uploads go up in parts (boto3's transfer
manager) and downloads stream. Credentials come from boto3's own chain (environment, profile,
instance role), never from the gateway's config."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from shared.batch.file_content import CHUNK_BYTES, CountingReader
from shared.config.settings import S3Settings

log = logging.getLogger(__name__)


class S3Content:
    bounded = False  # the store's own quota applies, not files.redis_max_bytes

    def __init__(self, s: S3Settings) -> None:
        import boto3  # only a gateway that stores files in S3 needs it loaded

        if not s.bucket:
            raise ValueError("files.s3.bucket is required for files.store: s3")
        self.bucket, self.prefix = s.bucket, s.prefix
        self.client: Any = boto3.client("s3", endpoint_url=s.endpoint_url, region_name=s.region)

    def _key(self, file_id: str) -> str:
        return f"{self.prefix}{file_id}"

    def write(self, file_id: str, reader: CountingReader, expire_s: int) -> None:
        # An upload that dies half-way is aborted by the transfer manager; one whose record
        # is never committed leaves an object without a record (a bucket lifecycle rule on
        # the prefix can sweep those).
        self.client.upload_fileobj(reader, self.bucket, self._key(file_id))

    def read(self, file_id: str, start: int = 0) -> Iterator[bytes]:
        extra = {"Range": f"bytes={start}-"} if start else {}
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(file_id), **extra)["Body"]
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()

    def drop(self, file_id: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(file_id))
        except Exception:  # the record is gone; an orphan object is the store's to sweep
            log.warning("could not delete a file's object", extra={"file_id": file_id})
