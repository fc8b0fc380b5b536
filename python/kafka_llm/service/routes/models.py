"""``GET /v1/models`` and ``GET /v1/models/{model}`` in OpenAI's shape, from the configured
providers' ``models`` and filtered by what the caller's API key may use.

- The list holds each **literal** model name of the providers' ``models`` once, owned by the
  provider a request for it is routed to (the first whose ``models`` match, as the workers route).
  Glob patterns (``gpt-4o*``) are not model ids and are not listed, nor is anything for a provider
  without a ``models`` list (the default provider serving any name).
- Retrieving a model answers for every name the service would accept from this key: a literal, a
  name one of the patterns matches, or any name when the default provider has no ``models`` list.
  Anything else (including a model the key may not use) is a 404 ``model_not_found``, as OpenAI
  answers a model that "does not exist or you do not have access to it".
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from kafka_llm.service.deps import CallerDep, GatewayDep
from kafka_llm.service.errors import ServiceError
from kafka_llm.service.gateway import Gateway
from kafka_llm.service.keystore import ApiKey
from kafka_llm.service.routes.common import errors

__all__ = ["is_pattern", "router"]

router = APIRouter(prefix="/v1", tags=["openai"])

#: ``created`` of every model: when this service process loaded the routes (the configuration
#: carries no dates).
_CREATED = int(time.time())


def is_pattern(name: str) -> bool:
    """Whether a ``models`` entry is a glob (fnmatch's ``*``, ``?`` or ``[...]``)."""
    return any(c in name for c in "*?[")


def _model(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": owner}


def _owner(gateway: Gateway, model: str) -> str | None:
    """The provider serving ``model``, or None when the service would refuse it."""
    try:
        return gateway.route(None, model)
    except ServiceError:
        return None


def _not_found(model: str) -> ServiceError:
    return ServiceError(
        404,
        f"The model {model!r} does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def _allowed(key: ApiKey | None, model: str) -> bool:
    return key is None or key.allows_model(model)


@router.get(
    "/models",
    responses=errors(401),
    summary="The models this API key may use (literal names of the providers' models)",
)
async def list_models(gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    seen: set[str] = set()
    for provider in gateway.config.providers:
        for name in provider.models:
            if name in seen or is_pattern(name) or not _allowed(caller, name):
                continue
            seen.add(name)
            owner = _owner(gateway, name)
            if owner is not None:
                data.append(_model(name, owner))
    return {"object": "list", "data": data}


@router.get(
    "/models/{model:path}",
    responses=errors(401, 404),
    summary="One model, if the service serves it to this API key",
)
async def retrieve_model(model: str, gateway: GatewayDep, caller: CallerDep) -> dict[str, Any]:
    owner = _owner(gateway, model) if _allowed(caller, model) else None
    if owner is None:
        raise _not_found(model)
    return _model(model, owner)
