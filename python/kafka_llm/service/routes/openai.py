"""OpenAI-compatible endpoints, answered through Kafka and a worker. ``stream: true`` relays the
worker's token frames as server-sent events as they arrive; ``WebSocket /v1/completions`` relays
them as JSON messages.

A client that goes away before its answer ended (an HTTP connection closed while the service
waits for the worker or relays a stream, a WebSocket closed mid-request) has its call cancelled:
the gateway counts it and, when the stream has a control topic, produces a cancel record so the
worker stops the provider call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from kafka_llm.errors import KafkaLlmError
from kafka_llm.service import strict_json
from kafka_llm.service.deps import CallerDep, GatewayDep, check_key, gateway_of, key_in_url
from kafka_llm.service.errors import ServiceError, core_error_status, error_body
from kafka_llm.service.gateway import Answer, Gateway, StreamStart
from kafka_llm.service.keystore import ApiKey
from kafka_llm.service.routes.common import errors
from kafka_llm.service.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from kafka_llm.service.stream_limit import StreamLease
from kafka_llm.service.streaming import sse

router = APIRouter(prefix="/v1", tags=["openai"])

T = TypeVar("T")

#: Requests a WebSocket client may send ahead while one is being answered (then reading waits).
_SOCKET_BACKLOG = 16
#: The status logged for a call whose client left (nginx's "client closed request"); never sent.
_CLIENT_CLOSED = 499

_ERRORS = errors(400, 401, 403, 413, 422, 429, 431, 503, 504)
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


class _EventStream(StreamingResponse):
    """The stream's server-sent events. Starlette stops sending when the client disconnects (and
    may do so before the first event); closing the stream afterwards, whatever happened, is what
    lets the gateway tell a stream left early (cancelled) from one that ended. Then the stream's
    place among its key's concurrent streams is given back."""

    def __init__(self, started: StreamStart, headers: dict[str, str], lease: StreamLease) -> None:
        super().__init__(_sse(started.events), media_type="text/event-stream", headers=headers)
        self._started = started
        self._lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._started.aclose()
            finally:
                self._lease.release()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has closed the connection (the body was read already, so the
    server has nothing else to hand over)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_client_leaves(request: Request, work: Coroutine[Any, Any, T]) -> T | None:
    """The result of ``work``, or None when the client disconnected first: ``work`` is then
    cancelled (the gateway counts the call as cancelled and tells the workers)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    if task.cancelled():
        return None
    return task.result()


async def _answer(gateway: Gateway, caller: ApiKey | None, endpoint: str, request: Any, http: Request) -> Any:
    body = request.provider_body()
    if body.get("stream"):
        lease = gateway.stream_lease(caller)  # a 429 before anything is produced
        try:
            started = await _unless_client_leaves(
                http, gateway.start_stream(caller, endpoint, request.provider, body)
            )
        except BaseException:
            lease.release()
            raise
        if started is None or isinstance(started, Answer):
            lease.release()
            return Response(status_code=_CLIENT_CLOSED) if started is None else _json(started)
        headers = {"x-request-id": started.request_id, "cache-control": "no-cache", "x-accel-buffering": "no"}
        if started.cached:
            headers["x-kafka-llm-cache"] = "hit"
        return _EventStream(started, headers, lease)
    answer = await _unless_client_leaves(http, gateway.complete(caller, endpoint, request.provider, body))
    return Response(status_code=_CLIENT_CLOSED) if answer is None else _json(answer)


@router.post(
    "/chat/completions", responses={**_STREAM_DOC, **_ERRORS}, summary="Chat completion (OpenAI API)"
)
async def chat_completions(
    request: ChatCompletionRequest, gateway: GatewayDep, caller: CallerDep, http: Request
) -> Any:
    return await _answer(gateway, caller, "/v1/chat/completions", request, http)


@router.post("/completions", responses={**_STREAM_DOC, **_ERRORS}, summary="Text completion (OpenAI API)")
async def completions(
    request: CompletionRequest, gateway: GatewayDep, caller: CallerDep, http: Request
) -> Any:
    return await _answer(gateway, caller, "/v1/completions", request, http)


@router.post("/embeddings", responses=_ERRORS, summary="Embeddings (OpenAI API)")
async def embeddings(request: EmbeddingRequest, gateway: GatewayDep, caller: CallerDep, http: Request) -> Any:
    return await _answer(gateway, caller, "/v1/embeddings", request, http)


@router.websocket("/completions")
async def completions_socket(websocket: WebSocket) -> None:
    """Send a completion request as a JSON message (``messages`` instead of ``prompt`` makes it a
    chat completion; ``stream`` defaults to true); receive each chunk as a JSON message, then
    ``{"done": true, "request_id", "finish_reason", "usage"}``, or ``{"error": {…}}``. Several
    requests may follow each other on one connection. The API key goes in the Authorization
    header or, for clients that cannot set headers (browsers), in a first message
    ``{"api_key": "<key>"}`` or ``{"authorization": "Bearer <key>"}``; never in the URL (URLs
    are logged): ``?api_key=`` is refused."""
    gateway = gateway_of(websocket)
    await websocket.accept()
    refused = key_in_url(
        websocket.query_params,
        "Send the key in the Authorization header (Bearer <key>), or as the first message "
        '{"api_key": "<key>"}',
    )
    if refused is not None:  # refused even with a header
        await _refuse(websocket, refused)
        return
    authorization = websocket.headers.get("authorization")
    by_message = authorization is None and gateway.settings.auth_enabled
    try:
        if by_message:
            authorization = await _first_message_key(websocket)
        caller = await check_key(gateway, authorization)
    except ServiceError as e:
        await _refuse(websocket, e)
        return
    except WebSocketDisconnect:
        return
    # The connection holds one of the key's concurrent streams until it closes.
    try:
        lease = gateway.stream_lease(caller)
    except ServiceError as e:
        await _refuse(websocket, e, close_code=1013)  # 1013: try again later
        return
    try:
        await _serve_socket(websocket, gateway, caller, by_message)
    finally:
        lease.release()


async def _serve_socket(
    websocket: WebSocket, gateway: Gateway, caller: ApiKey | None, by_message: bool
) -> None:
    """Answers the connection's requests one after the other until the client closes it."""
    # Messages are read on their own task, so a client closing the socket mid-request is seen at
    # once (not at the next send): the request being answered is then cancelled.
    inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue(_SOCKET_BACKLOG)
    reader = asyncio.create_task(_read_socket(websocket, inbox))
    first = not by_message
    try:
        while (text := await inbox.get()) is not None:
            if first and _key_message(text) is not None:
                first = False  # a key sent with the Authorization header or auth off: not a request
                continue
            first = False
            serving = asyncio.create_task(_socket_request(websocket, gateway, caller, text))
            await asyncio.wait((serving, reader), return_when=asyncio.FIRST_COMPLETED)
            if not serving.done():  # the client left mid-request
                serving.cancel()
                await asyncio.wait((serving,))
                return
            if isinstance(serving.exception(), WebSocketDisconnect):  # a send found it closed
                return
            serving.result()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


#: How long a client without an Authorization header has to send its key as the first message.
_KEY_MESSAGE_SECONDS = 10.0
_KEY_MESSAGE_HINT = (
    'send the Authorization header (Bearer <key>), or as the first message {"api_key": "<key>"} '
    'or {"authorization": "Bearer <key>"}'
)


async def _refuse(websocket: WebSocket, error: ServiceError, close_code: int = 1008) -> None:
    """Sends the error as a message, then closes the connection with ``close_code`` (1008:
    policy violation)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_json(error_body(error.status_code, error.message, error.param, error.code))
        await websocket.close(code=close_code, reason=(error.code or "unauthorized")[:120])


async def _first_message_key(websocket: WebSocket) -> str:
    """The Authorization value from the client's first message. Raises ServiceError (401) when
    it holds no key or none comes in time, WebSocketDisconnect when the client leaves."""
    try:
        async with asyncio.timeout(_KEY_MESSAGE_SECONDS):
            message = await websocket.receive()
    except TimeoutError:
        raise ServiceError(
            401,
            f"missing API key: none within {_KEY_MESSAGE_SECONDS:g} s; {_KEY_MESSAGE_HINT}",
            code="missing_api_key",
        ) from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    authorization = _key_message(text if text is not None else message.get("bytes") or b"")
    if authorization is None:
        raise ServiceError(401, f"missing API key: {_KEY_MESSAGE_HINT}", code="missing_api_key")
    return authorization


def _key_message(text: str | bytes) -> str | None:
    """The Authorization value of a key message (an object of only ``api_key`` and/or
    ``authorization``), or None for any other message."""
    if len(text) > 4096:
        return None
    try:
        message = strict_json.loads(text)
    except strict_json.StrictJSONError:
        return None
    if not isinstance(message, dict) or not message or not set(message) <= {"api_key", "authorization"}:
        return None
    if isinstance(message.get("authorization"), str):
        return str(message["authorization"])
    if isinstance(message.get("api_key"), str):
        return f"Bearer {message['api_key']}"
    return ""  # a key message without a usable key: check_key answers 401


async def _read_socket(websocket: WebSocket, inbox: asyncio.Queue[str | bytes | None]) -> None:
    """Puts each message (text, or the bytes of a binary one) into ``inbox``, then None once the
    client has closed the connection."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            await inbox.put(text if text is not None else message.get("bytes") or b"")
    finally:
        with contextlib.suppress(asyncio.QueueFull):
            inbox.put_nowait(None)


async def _socket_request(
    websocket: WebSocket, gateway: Gateway, caller: ApiKey | None, text: str | bytes
) -> None:
    size = len(text.encode()) if isinstance(text, str) else len(text)
    if size > gateway.max_body_bytes:
        await websocket.send_json(
            error_body(413, f"the request is larger than {gateway.max_body_bytes} bytes")
        )
        return
    try:
        raw = strict_json.loads(text)
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
    except ValueError as e:  # StrictJSONError included
        await websocket.send_json(error_body(422, f"body: {e}", param="body"))
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
    try:
        await _relay_socket(websocket, started)
    finally:
        await started.aclose()


async def _relay_socket(websocket: WebSocket, started: StreamStart) -> None:
    async for event in started.events:
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
