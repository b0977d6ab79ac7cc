"""``chat.completion.chunk`` streams: assembling the final message, and replaying a finished
completion as chunks (a cache hit, a fallback answer, a stream that has expired)."""

from __future__ import annotations

from typing import Any

from shared.wire import openai_shape


class Assembler:
    """Folds a provider's chunks into the ``chat.completion`` a non-streamed call returns."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> None:
        for name in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(name) is not None and name not in self.meta:
                self.meta[name] = chunk[name]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for raw in chunk.get("choices") or ():
            if not isinstance(raw, dict):
                continue
            index = int(raw.get("index") or 0)
            choice = self.choices.setdefault(
                index, {"index": index, "message": {"role": "assistant"}, "finish_reason": None}
            )
            delta = raw.get("delta") or {}
            message = choice["message"]
            if delta.get("role"):
                message["role"] = delta["role"]
            for text in ("content", "reasoning_content", "refusal"):
                if isinstance(delta.get(text), str):
                    message[text] = (message.get(text) or "") + delta[text]
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._tool_call(message, call)
            self._logprobs(choice, raw.get("logprobs"))
            if raw.get("finish_reason"):
                choice["finish_reason"] = raw["finish_reason"]

    @staticmethod
    def _logprobs(choice: dict[str, Any], logprobs: Any) -> None:
        """A chunk's token logprobs (``content`` and ``refusal`` lists) appended to its
        choice's; a choice no chunk carried logprobs for keeps none (null)."""
        if not isinstance(logprobs, dict):
            return
        kept = choice.get("logprobs")
        if not isinstance(kept, dict):
            kept = choice["logprobs"] = {"content": None, "refusal": None}
        for part in ("content", "refusal"):
            tokens = logprobs.get(part)
            if isinstance(tokens, list):
                if kept[part] is None:
                    kept[part] = []
                kept[part].extend(tokens)

    @staticmethod
    def _tool_call(message: dict[str, Any], call: dict[str, Any]) -> None:
        """A tool-call delta into its call. OpenAI numbers the calls (``index``); a delta
        without one belongs to the call with its ``id``, a new call when the id is new, or
        the call before it when it has no id either (a continuation)."""
        calls: list[dict[str, Any]] = message.setdefault("tool_calls", [])
        index = call.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            ids = [c["id"] for c in calls]
            if call.get("id") and call["id"] in ids:
                index = ids.index(call["id"])
            elif call.get("id") or not calls:
                index = len(calls)
            else:
                index = len(calls) - 1
        while len(calls) <= index:
            calls.append(
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
        target = calls[index]
        if call.get("id"):
            target["id"] = call["id"]
        if call.get("type"):
            target["type"] = call["type"]
        fn = call.get("function") or {}
        if fn.get("name"):
            target["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            target["function"]["arguments"] += fn["arguments"]

    @property
    def finished(self) -> bool:
        """Every choice ended with a finish_reason (a stream cut short has not)."""
        return bool(self.choices) and all(c["finish_reason"] for c in self.choices.values())

    def result(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self.choices):
            choice = self.choices[index]
            choice["message"].setdefault("content", None)
            choices.append(choice)
        out: dict[str, Any] = {
            "id": self.meta.get("id", "chatcmpl-gateway"),
            "object": "chat.completion",
            "created": self.meta.get("created", 0),
            "model": self.meta.get("model", ""),
            "choices": choices,
        }
        if "system_fingerprint" in self.meta:
            out["system_fingerprint"] = self.meta["system_fingerprint"]
        if self.usage is not None:
            out["usage"] = self.usage
        return openai_shape.completion(out)


def _chunk(completion: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    return openai_shape.chunk(
        {
            "id": completion.get("id"),
            "object": "chat.completion.chunk",
            "created": completion.get("created"),
            "model": completion.get("model"),
            "choices": choices,
        }
    )


def wants_usage(request: dict[str, Any] | None) -> bool:
    """Did the request ask for the final usage chunk (``stream_options.include_usage``)?"""
    return bool(((request or {}).get("stream_options") or {}).get("include_usage"))


def usage_chunk(template: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """The final chunk ``stream_options.include_usage`` asks for: no choices, the usage."""
    return {**_chunk(template, []), "usage": usage}


def from_completion(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A finished ``chat.completion`` as the chunks a stream of it would have carried."""
    out = []
    for choice in completion.get("choices") or ():
        message = dict(choice.get("message") or {})
        delta = {"role": message.pop("role", "assistant")}
        delta.update({k: v for k, v in message.items() if v is not None})
        if "tool_calls" in delta:
            delta["tool_calls"] = [
                {**call, "index": i} for i, call in enumerate(delta["tool_calls"])
            ]
        index = choice.get("index", 0)
        first = {"index": index, "delta": delta, "logprobs": choice.get("logprobs")}
        out.append(_chunk(completion, [{**first, "finish_reason": None}]))
        out.append(
            _chunk(
                completion,
                [{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}],
            )
        )
    if include_usage and isinstance(completion.get("usage"), dict):
        out.append(usage_chunk(completion, completion["usage"]))
    return out
