"""Request and response bodies. OpenAI requests accept any extra parameter (passed to the provider
unchanged); only what the service itself relies on is checked."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

__all__ = [
    "CancelAccepted",
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "EmbeddingRequest",
    "ErrorBody",
    "ErrorObject",
    "ProcessAccepted",
    "ProcessRequest",
    "ResultCancelled",
    "ResultDone",
    "ResultError",
    "ResultPending",
]

_PROVIDER_DOC = "a configured provider name (kafka-llm extension; default: the model's route)"


class _OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200, description="the model name sent to the provider")
    provider: str | None = Field(default=None, min_length=1, description=_PROVIDER_DOC)

    def provider_body(self) -> dict[str, Any]:
        """The body the provider receives: what the client sent, less the ``provider`` extension."""
        return self.model_dump(exclude={"provider"}, exclude_unset=True) | {"model": self.model}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1)
    content: str | list[JsonValue] | None = None


class ChatCompletionRequest(_OpenAIRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class CompletionRequest(_OpenAIRequest):
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool = False


class EmbeddingRequest(_OpenAIRequest):
    input: str | list[str] | list[int] | list[list[int]]
    stream: Literal[False] = Field(default=False, description="embeddings cannot be streamed")


class ProcessRequest(BaseModel):
    """``/process``: one prompt as a chat completion; other fields go to the provider unchanged."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"provider": "openai", "model": "gpt-4o-mini", "prompt": "Hello", "temperature": 0}]
        },
    )

    provider: str | None = Field(default=None, min_length=1, description=_PROVIDER_DOC)
    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1)
    metadata: JsonValue = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ProcessAccepted(BaseModel):
    request_id: str


class ResultPending(BaseModel):
    status: Literal["pending"]


class ResultDone(BaseModel):
    provider: str | None
    model: str | None
    output: str | None
    error: None
    usage: dict[str, Any] | None


class ResultError(BaseModel):
    error: str


class ResultCancelled(BaseModel):
    """A cancelled request (``DELETE /result/{request_id}``, a client that left a stream, or
    ``kafka-llm cancel``): ``error`` is ``cancelled: <reason>``."""

    status: Literal["cancelled"]
    error: str


class CancelAccepted(BaseModel):
    """The cancel record is in Kafka; the workers skip or abort the request. ``GET
    /result/{request_id}`` then says ``cancelled``, or done/error if it finished first."""

    request_id: str
    status: Literal["cancelling"]


class ErrorObject(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class ErrorBody(BaseModel):
    """Every error the service returns (OpenAI's shape)."""

    error: ErrorObject
