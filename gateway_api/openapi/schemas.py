"""Marshmallow schemas of the answers, for the OpenAPI document only (the answers themselves
are built from the job record and the provider's body)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from shared.state.job_record import KINDS, PRIORITIES

STATUSES = ("queued", "running", "retrying", "succeeded", "failed", "cancelled", "expired")


class ErrorObjectSchema(Schema):
    message = fields.Str(required=True)
    type = fields.Str(required=True)
    code = fields.Str(required=True, allow_none=True)
    param = fields.Str(required=True, allow_none=True)
    job_id = fields.Str()


class ErrorSchema(Schema):
    """The OpenAI error envelope: every error the gateway answers has this shape."""

    error = fields.Nested(ErrorObjectSchema, required=True)


class ChatCompletionAnswerSchema(Schema):
    """The provider's ``chat.completion``, passed through (OpenAI's shape)."""

    class Meta:
        unknown = INCLUDE

    id = fields.Str(required=True)
    object = fields.Str(required=True)
    created = fields.Int(required=True)
    model = fields.Str(required=True)
    choices = fields.List(fields.Dict(), required=True)
    usage = fields.Dict(allow_none=True)


class AttemptSchema(Schema):
    provider = fields.Str(required=True)
    model = fields.Str(required=True)
    started_at = fields.Float(required=True)
    duration_ms = fields.Float(required=True)
    outcome = fields.Str(
        required=True, validate=validate.OneOf(["success", "error", "timeout", "cancelled"])
    )
    error = fields.Dict(allow_none=True)
    cost_usd = fields.Float(
        allow_none=True,
        metadata={"description": "what the call billed; 0 without an answer; null: no price"},
    )


class JobSchema(Schema):
    id = fields.Str(required=True)
    object = fields.Str(required=True, validate=validate.Equal("job"))
    kind = fields.Str(required=True, validate=validate.OneOf(KINDS))
    status = fields.Str(required=True, validate=validate.OneOf(STATUSES))
    priority = fields.Str(required=True, validate=validate.OneOf(PRIORITIES))
    created_at = fields.Float(required=True)
    started_at = fields.Float(required=True, allow_none=True)
    finished_at = fields.Float(required=True, allow_none=True)
    deadline_at = fields.Float(required=True)
    config_version = fields.Str(required=True)
    provider = fields.Str(required=True, allow_none=True)
    model = fields.Str(required=True)
    cache = fields.Str(required=True, allow_none=True, validate=validate.OneOf(["hit", "stale"]))
    degraded = fields.Bool(required=True)
    attempts = fields.List(fields.Nested(AttemptSchema), required=True)
    cost_usd = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "what the job's provider calls billed (USD); 0 for a cache hit or "
            "a stale or degraded answer; null when a deployment had no price"
        },
    )
    result = fields.Nested(ChatCompletionAnswerSchema, required=True, allow_none=True)
    error = fields.Nested(ErrorObjectSchema, required=True, allow_none=True)
    metadata = fields.Dict(required=True)


class _PageSchema(Schema):
    """OpenAI's cursor page: ``data``, then where it starts and ends and whether more follow."""

    object = fields.Str(required=True, validate=validate.Equal("list"))
    has_more = fields.Bool(required=True)
    first_id = fields.Str(required=True, allow_none=True)
    last_id = fields.Str(required=True, allow_none=True)


class JobListSchema(_PageSchema):
    data = fields.List(fields.Nested(JobSchema), required=True)


class FileSchema(Schema):
    """OpenAI's File object."""

    id = fields.Str(required=True)
    object = fields.Str(required=True, validate=validate.Equal("file"))
    bytes = fields.Int(required=True)
    created_at = fields.Int(required=True)
    filename = fields.Str(required=True)
    purpose = fields.Str(required=True)
    status = fields.Str(required=True)
    status_details = fields.Str(required=True, allow_none=True)
    expires_at = fields.Int(required=True, allow_none=True)


class FileListSchema(_PageSchema):
    data = fields.List(fields.Nested(FileSchema), required=True)


class FileDeletedSchema(Schema):
    id = fields.Str(required=True)
    object = fields.Str(required=True, validate=validate.Equal("file"))
    deleted = fields.Bool(required=True)


class _RequestCountsSchema(Schema):
    total = fields.Int(required=True)
    completed = fields.Int(required=True)
    failed = fields.Int(required=True)


class _LineErrorSchema(Schema):
    code = fields.Str(required=True)
    message = fields.Str(required=True)
    param = fields.Str(required=True, allow_none=True)
    line = fields.Int(required=True, allow_none=True)


class _BatchErrorsSchema(Schema):
    object = fields.Str(required=True, validate=validate.Equal("list"))
    data = fields.List(fields.Nested(_LineErrorSchema), required=True)


class BatchSchema(Schema):
    """OpenAI's Batch object."""

    id = fields.Str(required=True)
    object = fields.Str(required=True, validate=validate.Equal("batch"))
    endpoint = fields.Str(required=True)
    errors = fields.Nested(_BatchErrorsSchema, required=True, allow_none=True)
    input_file_id = fields.Str(required=True)
    completion_window = fields.Str(required=True)
    status = fields.Str(
        required=True,
        validate=validate.OneOf(
            (
                "validating",
                "failed",
                "in_progress",
                "finalizing",
                "completed",
                "expired",
                "cancelling",
                "cancelled",
            )
        ),
    )
    output_file_id = fields.Str(required=True, allow_none=True)
    error_file_id = fields.Str(required=True, allow_none=True)
    created_at = fields.Int(required=True)
    in_progress_at = fields.Int(required=True, allow_none=True)
    expires_at = fields.Int(required=True, allow_none=True)
    finalizing_at = fields.Int(required=True, allow_none=True)
    completed_at = fields.Int(required=True, allow_none=True)
    failed_at = fields.Int(required=True, allow_none=True)
    expired_at = fields.Int(required=True, allow_none=True)
    cancelling_at = fields.Int(required=True, allow_none=True)
    cancelled_at = fields.Int(required=True, allow_none=True)
    request_counts = fields.Nested(_RequestCountsSchema, required=True)
    metadata = fields.Dict(keys=fields.Str(), values=fields.Str(), required=True)


class BatchListSchema(_PageSchema):
    data = fields.List(fields.Nested(BatchSchema), required=True)


class _EventDataSchema(Schema):
    id = fields.Str(required=True)


class _EventSchema(Schema):
    id = fields.Str(required=True)
    object = fields.Str(required=True, validate=validate.Equal("event"))
    type = fields.Str(required=True)
    created_at = fields.Int(required=True)
    data = fields.Nested(_EventDataSchema, required=True)


class _AttemptSchema(Schema):
    at = fields.Int(required=True)
    status_code = fields.Int(required=True, allow_none=True)
    error = fields.Str(required=True, allow_none=True)
    duration_ms = fields.Float(required=True)


class WebhookDeliverySchema(Schema):
    id = fields.Str(required=True)
    object = fields.Str(required=True, validate=validate.Equal("webhook_delivery"))
    event = fields.Nested(_EventSchema, required=True)
    url = fields.Str(required=True)
    status = fields.Str(required=True, validate=validate.OneOf(("pending", "succeeded", "failed")))
    attempts = fields.List(fields.Nested(_AttemptSchema), required=True)
    created_at = fields.Int(required=True)
    next_attempt_at = fields.Int(required=True, allow_none=True)
    replays = fields.Int(required=True)


class WebhookDeliveryListSchema(_PageSchema):
    data = fields.List(fields.Nested(WebhookDeliverySchema), required=True)


class ModelSchema(Schema):
    id = fields.Str(required=True)
    object = fields.Str(required=True)
    created = fields.Int(required=True)
    owned_by = fields.Str(required=True)


class ModelListSchema(Schema):
    object = fields.Str(required=True)
    data = fields.List(fields.Nested(ModelSchema), required=True)


class StatusSchema(Schema):
    """Health pages: open-ended objects (docs/architecture.md "Health and status")."""

    class Meta:
        unknown = INCLUDE


class AdminConfigSchema(Schema):
    version = fields.Str(required=True, metadata={"description": "hash of the merged config"})
    redis_version = fields.Int(required=True, metadata={"description": "0: no Redis layer"})
    config = fields.Dict(required=True, metadata={"description": "merged, secrets as ***"})
    sources = fields.Dict(
        keys=fields.Str(),
        values=fields.Str(),
        required=True,
        metadata={"description": "dotted path -> default|file|env|...|redis|http"},
    )
    written_version = fields.Int(metadata={"description": "the version a write stored"})
    refused = fields.Dict(
        allow_none=True,
        metadata={"description": "field errors of the last refused refresh in this process"},
    )


class AdminConfigVersionSchema(Schema):
    version = fields.Int(required=True)
    created_at = fields.Float(required=True)
    actor = fields.Str(required=True)
    note = fields.Str(required=True)
    current = fields.Bool(required=True)
    layer = fields.Dict(required=True, metadata={"description": "the Redis layer, redacted"})


class AdminConfigVersionsSchema(Schema):
    object = fields.Str(required=True)
    current = fields.Int(required=True)
    data = fields.List(fields.Nested(AdminConfigVersionSchema), required=True)


class AdminRollbackSchema(Schema):
    version = fields.Int(required=True, validate=validate.Range(min=0))


class UsageRowSchema(Schema):
    key_id = fields.Str(required=True)
    model = fields.Str()
    provider = fields.Str()
    day = fields.Str(metadata={"description": "YYYY-MM-DD (UTC)"})
    requests = fields.Int(required=True)
    input_tokens = fields.Int(required=True)
    output_tokens = fields.Int(required=True)
    cached_input_tokens = fields.Int(required=True)
    cost_usd = fields.Float(
        required=True, allow_none=True, metadata={"description": "null: no deployment price"}
    )
    unpriced_requests = fields.Int(required=True)


class _UsageTotalSchema(UsageRowSchema):
    key_id = fields.Str()


class _BudgetSchema(Schema):
    usd = fields.Float(required=True)
    period = fields.Str(required=True, validate=validate.OneOf(("day", "month", "total")))
    spent_usd = fields.Float(required=True)
    reserved_usd = fields.Float(
        required=True, metadata={"description": "held by requests in flight"}
    )
    remaining_usd = fields.Float(required=True)
    resets_at = fields.Str(required=True, allow_none=True)


class UsageSchema(Schema):
    object = fields.Str(required=True, validate=validate.Equal("usage"))
    start = fields.Str(required=True)
    end = fields.Str(required=True)
    group_by = fields.Str(
        required=True, validate=validate.OneOf(("model", "provider", "day", "key"))
    )
    data = fields.List(fields.Nested(UsageRowSchema), required=True)
    total = fields.Nested(_UsageTotalSchema, required=True)
    budgets = fields.Dict(keys=fields.Str(), values=fields.Nested(_BudgetSchema), required=True)
