"""Marshmallow schemas of the API's own request bodies: the jobs body and the batches body.
The chat body's schema is shared with the batch duty: ``shared/wire/chat_schema.py``.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared.state.job_record import PRIORITIES
from shared.wire.chat_schema import StrictBool, StrictFloat


class JobCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    request = fields.Dict(required=True)
    priority = fields.Str(load_default="normal", validate=validate.OneOf(PRIORITIES))
    deadline_s = StrictFloat(allow_none=True, validate=validate.Range(min=1))
    metadata = fields.Dict(keys=fields.Str(validate=validate.Length(max=64)), load_default=dict)
    webhook = StrictBool(load_default=False)  # send job.* events to the key's endpoints


class BatchCreateSchema(Schema):
    """``POST /v1/batches`` (OpenAI's Batch API)."""

    class Meta:
        unknown = RAISE

    input_file_id = fields.Str(required=True, validate=validate.Length(min=1, max=128))
    endpoint = fields.Str(required=True)
    completion_window = fields.Str(required=True, validate=validate.OneOf(("24h",)))
    # OpenAI's metadata: up to 16 pairs, keys of 64 characters, values of 512.
    metadata = fields.Dict(
        keys=fields.Str(validate=validate.Length(max=64)),
        values=fields.Str(validate=validate.Length(max=512)),
        allow_none=True,
        validate=validate.Length(max=16),
    )
    output_expires_after = fields.Dict(allow_none=True)  # accepted; output files are kept
