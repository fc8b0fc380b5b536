"""OpenAI-compatible endpoints, answered through Kafka and a worker. ``stream: true`` relays the
worker's token frames as server-sent events as they arrive; ``WebSocket /v1/completions`` relays
them as JSON messages."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from kafka_llm.errors import KafkaLlmError
from kafka_llm.service.deps import CallerDep, GatewayDep, check_key, gateway_of
from kafka_llm.service.errors import ServiceError, core_error_status, error_body
from kafka_llm.service.gateway import Answer, Gateway, StreamStart
from kafka_llm.service.keystore import ApiKey
from kafka_llm.service.routes.common import errors
from kafka_llm.service.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from kafka_llm.service.streaming import sse

router = APIRouter(prefix="/v1", tags=["openai"])

_ERRORS = errors(400, 401, 403, 413, 422, 503, 504)
_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream is true"}
}


def _json(answer: Answer) -> JSONResponse:
    headers = {"x-request-id": answer.request_id}
    if answer.cached:
        headers["x-kafka-llm-cache"] = "hit"
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


async def _sse(events: AsyncGenerator[dict[str, Any], None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            if "chunk" in event:
                yield sse(event["chunk"])
            elif event.get("error"):
                yield sse({"error": event["error"]})
        yield sse("[DONE]")
    finally:
        await events.aclose()


async def _answer(gateway: Gateway, caller: ApiKey | None, endpoint: str, request: Any) -> Any:
    body = request.provider_body()
    if body.get("stream"):
        started = await gateway.start_stream(caller, endpoint, request.provider, body)
        if isinstance(started, Answer):
            return _json(started)
        headers = {"x-request-id": started.request_id, "cache-control": "no-cache", "x-accel-buffering": "no"}
        if started.cached:
            headers["x-kafka-llm-cache"] = "hit"
        return StreamingResponse(_sse(started.events), media_type="text/event-stream", headers=headers)
    return _json(await gateway.complete(caller, endpoint, request.provider, body))


@router.post(
    "/chat/completions", responses={**_STREAM_DOC, **_ERRORS}, summary="Chat completion (OpenAI API)"
)
async def chat_completions(request: ChatCompletionRequest, gateway: GatewayDep, caller: CallerDep) -> Any:
    return await _answer(gateway, caller, "/v1/chat/completions", request)


@router.post("/completions", responses={**_STREAM_DOC, **_ERRORS}, summary="Text completion (OpenAI API)")
async def completions(request: CompletionRequest, gateway: GatewayDep, caller: CallerDep) -> Any:
    return await _answer(gateway, caller, "/v1/completions", request)


@router.post("/embeddings", responses=_ERRORS, summary="Embeddings (OpenAI API)")
async def embeddings(request: EmbeddingRequest, gateway: GatewayDep, caller: CallerDep) -> Any:
    return await _answer(gateway, caller, "/v1/embeddings", request)


@router.websocket("/completions")
async def completions_socket(websocket: WebSocket) -> None:
    """Send a completion request as a JSON message (``messages`` instead of ``prompt`` makes it a
    chat completion; ``stream`` defaults to true); receive each chunk as a JSON message, then
    ``{"done": true, "request_id", "finish_reason", "usage"}``, or ``{"error": {…}}``. Several
    requests may follow each other on one connection. The API key goes in the Authorization
    header (or ``?api_key=`` for clients that cannot set headers)."""
    gateway = gateway_of(websocket)
    await websocket.accept()
    authorization = websocket.headers.get("authorization")
    if authorization is None and websocket.query_params.get("api_key"):
        authorization = f"Bearer {websocket.query_params['api_key']}"
    try:
        caller = await check_key(gateway, authorization)
    except ServiceError as e:
        await websocket.send_json(error_body(e.status_code, e.message, e.param, e.code))
        await websocket.close(code=1008)
        return
    try:
        while True:
            text = await websocket.receive_text()
            await _socket_request(websocket, gateway, caller, text)
    except WebSocketDisconnect:
        return


async def _socket_request(websocket: WebSocket, gateway: Gateway, caller: ApiKey | None, text: str) -> None:
    if len(text.encode()) > gateway.max_body_bytes:
        await websocket.send_json(
            error_body(413, f"the request is larger than {gateway.max_body_bytes} bytes")
        )
        return
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a request must be a JSON object")
        raw.setdefault("stream", True)
        chat = "messages" in raw
        request: ChatCompletionRequest | CompletionRequest = (
            ChatCompletionRequest.model_validate(raw) if chat else CompletionRequest.model_validate(raw)
        )
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        await websocket.send_json(error_body(422, f"{field}: {first['msg']}", param=field))
        return
    except ValueError as e:
        await websocket.send_json(error_body(422, f"body: {e}"))
        return
    endpoint = "/v1/chat/completions" if chat else "/v1/completions"
    body = request.provider_body()
    try:
        if body.get("stream"):
            started = await gateway.start_stream(caller, endpoint, request.provider, body)
        else:
            started = await gateway.complete(caller, endpoint, request.provider, body)
    except ServiceError as e:
        await websocket.send_json(error_body(e.status_code, e.message, e.param, e.code))
        return
    except KafkaLlmError as e:
        status = core_error_status(e)
        await websocket.send_json(error_body(status, str(e)))
        return
    if isinstance(started, Answer):
        await websocket.send_json(
            {**started.body, "request_id": started.request_id} if started.status_code < 400 else started.body
        )
        return
    await _relay_socket(websocket, started)


async def _relay_socket(websocket: WebSocket, started: StreamStart) -> None:
    events = started.events
    try:
        async for event in events:
            if "chunk" in event:
                await websocket.send_json(event["chunk"])
            elif event.get("error"):
                await websocket.send_json({"error": event["error"], "request_id": started.request_id})
            else:
                await websocket.send_json(
                    {
                        "done": True,
                        "request_id": started.request_id,
                        "finish_reason": event.get("finish_reason"),
                        "usage": event.get("usage"),
                    }
                )
    finally:
        await events.aclose()
