"""``POST /process``, ``GET /result/{request_id}`` (the original event backend's API) and
``DELETE /result/{request_id}`` (cancellation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from kafka_llm.cancel import DEFAULT_REASON
from kafka_llm.service.deps import CallerDep, GatewayDep
from kafka_llm.service.errors import ServiceError
from kafka_llm.service.routes.common import errors
from kafka_llm.service.schemas import (
    CancelAccepted,
    ProcessAccepted,
    ProcessRequest,
    ResultCancelled,
    ResultDone,
    ResultError,
    ResultPending,
)

router = APIRouter(tags=["queue"])


@router.post(
    "/process",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProcessAccepted,
    responses=errors(400, 401, 403, 413, 422, 503),
    summary="Queue one prompt; poll /result/{request_id} for the answer",
)
async def process(request: ProcessRequest, gateway: GatewayDep, caller: CallerDep) -> ProcessAccepted:
    """Produces a chat completion request (`prompt` as the user message; any other field, such as
    `temperature`, goes to the provider) to the request topic and answers once the broker has it."""
    params = request.params()
    if "stream" in params:
        raise ServiceError(
            422, "stream: not supported on /process (use /v1/chat/completions)", param="stream"
        )
    if "messages" in params:
        raise ServiceError(
            422, "messages: /process takes a prompt (use /v1/chat/completions)", param="messages"
        )
    body: dict[str, Any] = {"model": request.model, "messages": [{"role": "user", "content": request.prompt}]}
    body.update(params)
    request_id = await gateway.process(caller, request.provider, request.model, body, request.metadata)
    return ProcessAccepted(request_id=request_id)


@router.get(
    "/result/{request_id}",
    response_model=ResultPending | ResultDone | ResultCancelled | ResultError,
    responses=errors(401, 404, 503),
    summary="The state of a queued request: pending, done, error or cancelled",
)
async def result(request_id: str, gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
    return await gateway.result(request_id, caller)


@router.delete(
    "/result/{request_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CancelAccepted,
    responses=errors(401, 404, 409, 501, 503),
    summary="Cancel a request that has not finished",
)
async def cancel(
    request_id: str,
    gateway: GatewayDep,
    caller: CallerDep,
    reason: Annotated[
        str | None,
        Query(
            min_length=1, max_length=500, description="why; the result's error becomes 'cancelled: <reason>'"
        ),
    ] = None,
) -> dict[str, Any]:
    """Produces a cancel record to the first stream's control topic (`messaging.streams[0].cancelURL`)
    and answers once the broker has it. The workers skip the request if it is still queued (the
    provider is never called) or abort its provider call; its result becomes `cancelled`. A request
    that finishes before the record is read keeps its result (poll `GET /result/{request_id}`)."""
    return await gateway.cancel(request_id, reason or DEFAULT_REASON, caller)
