"""FastAPI dependencies: the process's gateway and the caller's API key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection

from kafka_llm.service.errors import ServiceError
from kafka_llm.service.gateway import CURRENT_RETRY, Gateway, RetryIdentity
from kafka_llm.service.keystore import ApiKey
from kafka_llm.service.redact import is_secret_name

__all__ = ["CallerDep", "GatewayDep", "authenticate", "gateway_of", "get_gateway", "key_in_url"]


def gateway_of(connection: HTTPConnection) -> Gateway:
    gateway: Gateway = connection.app.state.gateway
    return gateway


async def get_gateway(connection: HTTPConnection) -> Gateway:
    # async: FastAPI would run a plain function in its thread pool, a thread hop per request.
    return gateway_of(connection)


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def check_key(gateway: Gateway, authorization: str | None) -> ApiKey | None:
    """The caller's key, or None when auth is off. Raises 401 for a missing, unknown or revoked key."""
    if not gateway.settings.auth_enabled:
        return None
    challenge = {"WWW-Authenticate": "Bearer"}
    if not authorization:
        raise ServiceError(
            401,
            "missing API key: send Authorization: Bearer <key>",
            code="missing_api_key",
            headers=challenge,
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ServiceError(
            401, "the Authorization header must be: Bearer <key>", code="invalid_api_key", headers=challenge
        )
    known, key = gateway.keys.cached(token)
    if not known:
        try:
            key = await asyncio.to_thread(gateway.keys.verify, token)  # database I/O: never on the loop
        except SQLAlchemyError as e:
            raise ServiceError(
                503,
                f"the API key database is unavailable ({type(e).__name__}): try again later",
                code="database_unavailable",
            ) from None
    if key is None:
        raise ServiceError(401, "invalid API key", code="invalid_api_key", headers=challenge)
    if key.revoked:
        raise ServiceError(401, "this API key was revoked", code="revoked_api_key", headers=challenge)
    return key


async def authenticate(request: Request, gateway: GatewayDep) -> ApiKey | None:
    # The call's retry identity, for the gateway (same task and context as the route).
    CURRENT_RETRY.set(RetryIdentity.from_headers(request.headers))
    authorization = request.headers.get("authorization")
    if not authorization and gateway.settings.auth_enabled:
        # A key in the URL is never used (the access log redacts it), and the refusal says so
        # instead of a bare "missing API key".
        refused = key_in_url(request.query_params, "Send Authorization: Bearer <key>")
        if refused is not None:
            raise refused
    return await check_key(gateway, authorization)


def key_in_url(query_params: Iterable[str], how: str) -> ServiceError | None:
    """The 401 for a request carrying a credential-like query parameter (``how``: where the key
    goes instead), or None. URLs end up in logs and proxies, so a key there is never used."""
    in_url = next((name for name in query_params if is_secret_name(name)), None)
    if in_url is None:
        return None
    return ServiceError(
        401,
        f"API keys are not accepted in the URL (?{in_url}=…): URLs are logged. {how}",
        code="api_key_in_url",
        headers={"WWW-Authenticate": "Bearer"},
    )


CallerDep = Annotated[ApiKey | None, Depends(authenticate)]
