"""The marshmallow schema of an OpenAI chat completion body (``ChatCompletionSchema``: the
messages, the sampling parameters, the tools, the ``gateway`` extension), its strict JSON
fields, and ``first_error``: the first validation error of any schema as (param, message).

The chat body is validated, then forwarded as the client sent it (minus ``gateway``):
unknown top-level fields pass through for providers that know them.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.state.job_record import PRIORITIES

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


class StrictFloat(fields.Field[Any]):
    """A JSON number (not a string, not a boolean)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        return float(value)


class StrictInt(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Not a valid integer.")
        return value


class StrictBool(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class Content(fields.Field[Any]):
    """A message's content: a string, null, or a list of typed parts."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("Must be a string, an array of content parts, or null.")
        for i, part in enumerate(value):
            if not isinstance(part, dict):
                raise ValidationError(f"Part {i} must be an object.")
            kind = part.get("type")
            if kind not in PART_TYPES:
                raise ValidationError(f"Part {i}: type must be one of {', '.join(PART_TYPES)}.")
            if kind == "text" and not isinstance(part.get("text"), str):
                raise ValidationError(f"Part {i}: a text part needs a string 'text'.")
            if kind == "image_url" and not isinstance(part.get("image_url"), (dict, str)):
                raise ValidationError(f"Part {i}: an image_url part needs 'image_url'.")
        return value


class Stop(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value):
            return value
        raise ValidationError("Must be a string or an array of at most 4 strings.")


class ToolChoice(fields.Field[Any]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value in ("none", "auto", "required"):
            return value
        if (
            isinstance(value, dict)
            and value.get("type") == "function"
            and isinstance(value.get("function"), dict)
            and isinstance(value["function"].get("name"), str)
        ):
            return value
        raise ValidationError(
            "Must be 'none', 'auto', 'required' or {\"type\": \"function\", "
            '"function": {"name": ...}}.'
        )


class MessageSchema(Schema):
    class Meta:
        unknown = INCLUDE

    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    content = Content(allow_none=True)
    name = fields.Str()
    tool_calls = fields.List(fields.Dict())
    tool_call_id = fields.Str()

    @validates_schema
    def _shape(self, data: dict[str, Any], **_: Any) -> None:
        role = data.get("role")
        if role == "tool" and not data.get("tool_call_id"):
            raise ValidationError("A tool message needs tool_call_id.", "tool_call_id")
        if role != "assistant" and data.get("content") is None:
            raise ValidationError("Content is required for this role.", "content")
        if role == "assistant" and data.get("content") is None and not data.get("tool_calls"):
            raise ValidationError("An assistant message needs content or tool_calls.", "content")


class FunctionSchema(Schema):
    class Meta:
        unknown = INCLUDE

    name = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"))
    description = fields.Str()
    parameters = fields.Dict()
    strict = StrictBool(allow_none=True)


class ToolSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = fields.Str(required=True, validate=validate.OneOf(["function"]))
    function = fields.Nested(FunctionSchema, required=True)


class ResponseFormatSchema(Schema):
    class Meta:
        unknown = INCLUDE

    type = fields.Str(
        required=True, validate=validate.OneOf(["text", "json_object", "json_schema"])
    )
    json_schema = fields.Dict()

    @validates_schema
    def _schema_given(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") == "json_schema" and not isinstance(data.get("json_schema"), dict):
            raise ValidationError("json_schema is required for type json_schema.", "json_schema")


class StreamOptionsSchema(Schema):
    class Meta:
        unknown = INCLUDE

    include_usage = StrictBool()


class GatewayExtSchema(Schema):
    """The request extension (``extra_body={"gateway": {...}}``)."""

    class Meta:
        unknown = RAISE

    priority = fields.Str(validate=validate.OneOf(PRIORITIES))
    deadline_s = StrictFloat(validate=validate.Range(min=1))
    preferred_provider = fields.Str()
    wait_for_recovery = StrictBool()
    cache = fields.Str(validate=validate.OneOf(["default", "no-cache", "no-store"]))
    webhook = StrictBool()  # send job.* events to the key's webhook endpoints


class ChatCompletionSchema(Schema):
    class Meta:
        unknown = INCLUDE

    model = fields.Str(validate=validate.Length(min=1, max=256))
    messages = fields.List(
        fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1)
    )
    temperature = StrictFloat(allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = StrictFloat(allow_none=True, validate=validate.Range(min=0, max=1))
    n = StrictInt(allow_none=True, validate=validate.Range(min=1))
    stop = Stop(allow_none=True)
    max_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    presence_penalty = StrictFloat(allow_none=True, validate=validate.Range(min=-2, max=2))
    frequency_penalty = StrictFloat(allow_none=True, validate=validate.Range(min=-2, max=2))
    logit_bias = fields.Dict(keys=fields.Str(), values=StrictFloat(), allow_none=True)
    logprobs = StrictBool(allow_none=True)
    top_logprobs = StrictInt(allow_none=True, validate=validate.Range(min=0, max=20))
    stream = StrictBool(allow_none=True)
    stream_options = fields.Nested(StreamOptionsSchema, allow_none=True)
    user = fields.Str(allow_none=True, validate=validate.Length(max=256))
    seed = StrictInt(allow_none=True)
    metadata = fields.Dict(keys=fields.Str(), values=fields.Str(), allow_none=True)
    tools = fields.List(
        fields.Nested(ToolSchema), allow_none=True, validate=validate.Length(max=128)
    )
    tool_choice = ToolChoice(allow_none=True)
    parallel_tool_calls = StrictBool(allow_none=True)
    response_format = fields.Nested(ResponseFormatSchema, allow_none=True)
    gateway = fields.Nested(GatewayExtSchema)


def first_error(messages: Any, path: str = "") -> tuple[str, str]:
    """(dotted param path, message) of the first validation error, for the OpenAI envelope."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            # "_schema": a whole-object error; "value": a Dict field's entry. Neither is a name.
            skip = key in ("_schema", "value")
            sub = path if skip else (f"{path}.{key}" if path else str(key))
            return first_error(value, sub)
    if isinstance(messages, list) and messages:
        if isinstance(messages[0], str):
            return path, messages[0]
        return first_error(messages[0], path)
    return path, str(messages)
