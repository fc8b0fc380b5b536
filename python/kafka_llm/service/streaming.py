"""Pure helpers for OpenAI bodies and token streams: the generated text of a body, a cached body
replayed as stream chunks, and stream chunks assembled back into a body (to cache a stream)."""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["AnthropicToOpenAIChunks", "assemble_body", "chunks_from_body", "output_text", "sse"]


def sse(data: Any) -> bytes:
    """One server-sent event carrying ``data`` (JSON, or a string such as ``[DONE]`` as is)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def output_text(body: Any) -> str | None:
    """choices[0].message.content (chat) or choices[0].text (completions), else None."""
    if not isinstance(body, dict):
        return None
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    first = choices[0]
    message = first.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return str(message["content"])
    text = first.get("text")
    return text if isinstance(text, str) else None


def chunks_from_body(body: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A complete chat or text completion replayed as the chunks its stream would have had."""
    chat = body.get("object") == "chat.completion"
    base = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": body.get("created", int(time.time())),
        "model": body.get("model", ""),
    }
    chunks: list[dict[str, Any]] = []
    finals: list[dict[str, Any]] = []
    for index, choice in enumerate(body.get("choices") or []):
        if not isinstance(choice, dict):
            continue
        i = choice.get("index", index)
        if chat:
            message = choice.get("message") or {}
            delta = {"role": message.get("role", "assistant"), "content": message.get("content") or ""}
            chunks.append({**base, "choices": [{"index": i, "delta": delta, "finish_reason": None}]})
            finals.append({"index": i, "delta": {}, "finish_reason": choice.get("finish_reason")})
        else:
            chunks.append(
                {**base, "choices": [{"index": i, "text": choice.get("text") or "", "finish_reason": None}]}
            )
            finals.append({"index": i, "text": "", "finish_reason": choice.get("finish_reason")})
    if finals:
        chunks.append({**base, "choices": finals})
    if include_usage and body.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    return chunks


def assemble_body(chunks: list[dict[str, Any]], usage: Any) -> dict[str, Any] | None:
    """The chat or text completion body a stream of OpenAI chunks adds up to, or None when the
    chunks carry something this does not rebuild (tool calls, several choices, other formats)."""
    if not chunks:
        return None
    first = chunks[0]
    kind = first.get("object")
    if kind not in ("chat.completion.chunk", "text_completion"):
        return None
    text: list[str] = []
    role = "assistant"
    finish_reason = None
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                return None
            if kind == "chat.completion.chunk":
                delta = choice.get("delta") or {}
                if set(delta) - {"role", "content", "refusal"} or delta.get("refusal"):
                    return None
                role = delta.get("role") or role
                text.append(delta.get("content") or "")
            else:
                text.append(choice.get("text") or "")
            finish_reason = choice.get("finish_reason") or finish_reason
    content = "".join(text)
    if kind == "chat.completion.chunk":
        choice_out: dict[str, Any] = {
            "index": 0,
            "message": {"role": role, "content": content},
            "finish_reason": finish_reason,
        }
        obj = "chat.completion"
    else:
        choice_out = {"index": 0, "text": content, "finish_reason": finish_reason, "logprobs": None}
        obj = "text_completion"
    body: dict[str, Any] = {
        "id": first.get("id", ""),
        "object": obj,
        "created": first.get("created", int(time.time())),
        "model": first.get("model", ""),
        "choices": [choice_out],
    }
    if usage is not None:
        body["usage"] = usage
    return body


_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class AnthropicToOpenAIChunks:
    """Turns the Anthropic stream events a worker relays (its provider's chunks, unchanged) into
    the ``chat.completion.chunk`` objects OpenAI clients expect. One per stream; text only
    (tool-use deltas are dropped)."""

    def __init__(self, model: str) -> None:
        self._base: dict[str, Any] = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

    def __call__(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._base["id"] = message.get("id", "")
            self._base["model"] = message.get("model") or self._base["model"]
            return [self._chunk({"role": "assistant", "content": ""}, None)]
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self._chunk({"content": delta["text"]}, None)]
            return []
        if kind == "message_delta":
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                return [self._chunk({}, _ANTHROPIC_FINISH.get(reason, reason))]
        return []

    def usage_chunk(self, usage: Any) -> dict[str, Any]:
        return {**self._base, "choices": [], "usage": usage}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
