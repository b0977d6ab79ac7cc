"""A Responses request's ``tools`` and ``tool_choice`` as chat's.

Only ``function`` tools exist over chat completions: ``{type, name, description,
parameters, strict}`` becomes chat's nested ``{type: "function", function: {...}}``. Every
built-in tool (web search, file search, computer use, code interpreter, image generation,
MCP, shell, custom and namespace tools...) is a 400 naming it: nothing in a chat provider
could run it, and dropping it would change the answer behind the client's back.

``strict`` left out is left out: chat's default (not strict) applies. OpenAI's Responses
API would instead rewrite the schema into strict form (every property required, no
additional properties), which a chat provider cannot be asked to do; a client that wants
strict says ``strict: true``, and the Response echoes the tool as it was sent.

``tool_choice``: ``auto`` / ``none`` / ``required`` as they are; ``{type: "function",
name}`` becomes ``{type: "function", function: {name}}``; ``{type: "allowed_tools", mode,
tools}`` (function tools only) becomes the listed subset of tools with ``mode`` as the
choice, which every chat provider understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from shared.wire.responses.checks import (
    array,
    at,
    name,
    obj,
    one_of,
    opt_bool,
    opt_string,
    present,
    refuse,
    string,
)

MODES = ("none", "auto", "required")


@dataclass(frozen=True)
class Tools:
    echo: list[dict[str, Any]]  # the tools as a Response lists them
    chat: list[dict[str, Any]]  # the chat body's tools (may be a subset: allowed_tools)
    choice_echo: str | dict[str, Any]  # the tool_choice as a Response shows it
    choice: str | dict[str, Any] | None  # the chat body's tool_choice (None: left out)


def translate(tools: Any, choice: Any) -> Tools:
    echo: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    for i, raw in enumerate([] if tools is None else array(tools, "tools")):
        param = at("tools", i)
        tool = obj(raw, param)
        kind = tool.get("type")
        if kind != "function":
            _refuse_tool(kind, at(param, "type"))
        fn_name = name(tool.get("name"), at(param, "name"))
        for j, seen in enumerate(echo):
            if seen["name"] == fn_name:
                refuse(at(param, "name"), f"`{fn_name}` is already the name of tools[{j}]")
        description = opt_string(tool.get("description"), at(param, "description"))
        parameters = tool.get("parameters")
        if parameters is not None:
            obj(parameters, at(param, "parameters"))
        strict = opt_bool(tool.get("strict"), at(param, "strict"))
        echo.append(
            {
                "type": "function",
                "name": fn_name,
                "description": description,
                "parameters": parameters,
                "strict": strict,
            }
        )
        function = {
            "name": fn_name,
            **present(description=description, parameters=parameters, strict=strict),
        }
        chat.append({"type": "function", "function": function})
    return _with_choice(echo, chat, choice)


def _with_choice(echo: list[dict[str, Any]], chat: list[dict[str, Any]], choice: Any) -> Tools:
    names = {tool["name"] for tool in echo}
    if choice is None:
        return Tools(echo, chat, "auto", "auto" if chat else None)
    if isinstance(choice, str):
        mode = one_of(choice, "tool_choice", MODES)
        if mode == "required" and not chat:
            refuse("tool_choice", "`required` needs at least one tool in tools")
        return Tools(echo, chat, mode, mode if chat else None)
    picked = obj(choice, "tool_choice")
    kind = picked.get("type")
    if kind == "function":
        fn_name = string(picked.get("name"), "tool_choice.name")
        if fn_name not in names:
            refuse("tool_choice.name", f"no function `{fn_name}` in tools")
        echo_choice: dict[str, Any] = {"type": "function", "name": fn_name}
        return Tools(echo, chat, echo_choice, {"type": "function", "function": {"name": fn_name}})
    if kind == "allowed_tools":
        mode = one_of(picked.get("mode"), "tool_choice.mode", ("auto", "required"))
        allowed = set()
        listed = array(picked.get("tools"), "tool_choice.tools")
        for i, raw in enumerate(listed):
            param = at("tool_choice.tools", i)
            entry = obj(raw, param)
            if entry.get("type") != "function":
                _refuse_tool(entry.get("type"), at(param, "type"))
            fn_name = string(entry.get("name"), at(param, "name"))
            if fn_name not in names:
                refuse(at(param, "name"), f"no function `{fn_name}` in tools")
            allowed.add(fn_name)
        if not allowed:
            refuse("tool_choice.tools", "list at least one function")
        subset = [tool for tool in chat if tool["function"]["name"] in allowed]
        return Tools(echo, subset, {"type": "allowed_tools", "mode": mode, "tools": listed}, mode)
    _refuse_tool(kind, "tool_choice.type")


def _refuse_tool(kind: Any, param: str) -> NoReturn:
    if not isinstance(kind, str):
        refuse(param, "a tool needs a type (function)")
    refuse(
        param,
        f"`{kind}` tools are not supported: this gateway's models are served over chat "
        "completions, which run function tools only",
        code="unsupported_parameter",
    )
