"""A Responses message's content as chat content.

- ``user``: a string, or parts ``input_text`` (a chat ``text`` part), ``input_image`` with an
  ``image_url`` (a URL or a ``data:`` URL; a chat ``image_url`` part, ``detail`` kept when chat
  knows it: low, high, auto) and ``input_file`` with ``file_data`` (a chat ``file`` part). A
  ``file_id`` or ``file_url`` is refused: the gateway keeps no OpenAI file store to read them
  from and chat providers take neither.
- ``system`` and ``developer``: a string or ``input_text`` parts.
- ``assistant`` (history): a string or ``output_text`` / ``input_text`` / ``refusal`` parts,
  joined into one string, the form every chat provider takes.

A single text part becomes a plain string (what the Agents SDK sends for every message), so
a provider that reads only string content still gets it; several parts stay a list.
"""

from __future__ import annotations

from typing import Any

from shared.wire.responses.checks import at, obj, one_of, opt_string, refuse, string

IMAGE_DETAILS = ("low", "high", "auto", "original")
_CHAT_DETAILS = ("low", "high", "auto")  # "original" has no chat equivalent: left out
_INPUT_PARTS = ("input_text", "input_image", "input_file")


def message_content(content: Any, param: str, role: str) -> str | list[dict[str, Any]]:
    """The chat content of a message with ``role`` (already validated) whose ``content`` is
    at ``param``."""
    if isinstance(content, str):
        return content
    parts = [obj(part, at(param, j)) for j, part in enumerate(_parts(content, param))]
    if role == "assistant":
        return "".join(_assistant_text(part, at(param, j)) for j, part in enumerate(parts))
    chat = [_input_part(part, at(param, j), images=role == "user") for j, part in enumerate(parts)]
    if not chat:
        return ""
    if len(chat) == 1 and chat[0]["type"] == "text":
        text: str = chat[0]["text"]
        return text
    return chat


def tool_output(output: Any, param: str) -> str:
    """A ``function_call_output``'s ``output`` (a string or ``input_text`` parts) as the text
    of a chat ``tool`` message: chat tool messages carry text only."""
    if isinstance(output, str):
        return output
    texts = []
    for j, raw in enumerate(_parts(output, param)):
        part = obj(raw, at(param, j))
        kind = part.get("type")
        if kind != "input_text":
            refuse(
                at(at(param, j), "type"),
                f"`{kind}` is not supported in a function_call_output: chat tool messages "
                "carry text only (input_text)",
            )
        texts.append(string(part.get("text"), at(at(param, j), "text")))
    return "".join(texts)


def _parts(content: Any, param: str) -> list[Any]:
    if not isinstance(content, list):
        refuse(param, "expected a string or an array of content parts")
    return content


def _assistant_text(part: dict[str, Any], param: str) -> str:
    kind = part.get("type")
    if kind in ("output_text", "input_text"):
        return string(part.get("text"), at(param, "text"))
    if kind == "refusal":
        return string(part.get("refusal"), at(param, "refusal"))
    return refuse(
        at(param, "type"),
        f"`{kind}` is not a part of an assistant message (output_text, refusal)",
    )


def _input_part(part: dict[str, Any], param: str, *, images: bool) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "input_text":
        return {"type": "text", "text": string(part.get("text"), at(param, "text"))}
    if kind in ("input_image", "input_file") and not images:
        refuse(at(param, "type"), f"a system or developer message takes text only, not `{kind}`")
    if kind == "input_image":
        return _image(part, param)
    if kind == "input_file":
        return _file(part, param)
    if kind in ("output_text", "refusal"):
        refuse(at(param, "type"), f"only an assistant message may hold `{kind}`")
    return refuse(
        at(param, "type"),
        f"`{kind}` is not a content part here ({', '.join(_INPUT_PARTS)})",
    )


def _image(part: dict[str, Any], param: str) -> dict[str, Any]:
    if part.get("file_id") is not None:
        refuse(
            at(param, "file_id"),
            "images by file id are not supported: send image_url (a URL or a data: URL)",
            code="unsupported_parameter",
        )
    url = string(part.get("image_url"), at(param, "image_url"), nonempty=True)
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None and one_of(detail, at(param, "detail"), IMAGE_DETAILS) in _CHAT_DETAILS:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _file(part: dict[str, Any], param: str) -> dict[str, Any]:
    for field in ("file_id", "file_url"):
        if part.get(field) is not None:
            refuse(
                at(param, field),
                f"files by {field.removeprefix('file_')} are not supported: send file_data",
                code="unsupported_parameter",
            )
    data = string(part.get("file_data"), at(param, "file_data"), nonempty=True)
    file: dict[str, Any] = {"file_data": data}
    filename = opt_string(part.get("filename"), at(param, "filename"))
    if filename is not None:
        file["filename"] = filename
    return {"type": "file", "file": file}
