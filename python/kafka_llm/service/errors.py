"""Errors as HTTP answers, in OpenAI's shape ``{"error": {"message", "type", "code", "param"}}`` so
OpenAI clients report them as they would OpenAI's own."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kafka_llm.errors import ConfigError, KafkaError, KafkaLlmError, RedisError

__all__ = ["ServiceError", "error_body", "error_kind", "install_error_handlers"]

_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "unauthorized"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("timeout_error", "request_timeout"),
    409: ("conflict_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    431: ("invalid_request_error", "request_header_fields_too_large"),
    500: ("api_error", "internal_error"),
    502: ("api_error", "bad_gateway"),
    503: ("api_error", "service_unavailable"),
    501: ("api_error", "not_implemented"),
    504: ("timeout_error", "gateway_timeout"),
}


def error_kind(status_code: int) -> tuple[str, str]:
    """OpenAI's error ``type`` and a ``code`` for an HTTP status (the core's table)."""
    if status_code in _KINDS:
        return _KINDS[status_code]
    kind = "invalid_request_error" if 400 <= status_code < 500 else "api_error"
    return kind, f"http_{status_code}"


def error_body(
    status_code: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind, default_code = error_kind(status_code)
    return {"error": {"message": message, "type": kind, "code": code or default_code, "param": param}}


class ServiceError(Exception):
    """A request the service answers with ``status_code``. A 4xx or a 503 means nothing was
    produced to Kafka; a 504 (the worker's answer, or the broker's acknowledgement, did not come
    in time) names the request id, which may still run."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_body(self.status_code, self.message, self.param, self.code),
            status_code=self.status_code,
            headers=self.headers,
        )


def core_error_status(error: KafkaLlmError) -> int:
    """The HTTP status of a core error: the broker or Redis unreachable is 503, anything else 500."""
    if isinstance(error, KafkaError | RedisError):
        return 503
    if isinstance(error, ConfigError):
        return 500
    return 500


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(KafkaLlmError)
    async def _core_error(_request: Request, exc: KafkaLlmError) -> JSONResponse:
        status = core_error_status(exc)
        if isinstance(exc, RedisError):  # before anything was produced: safe to retry
            body = error_body(status, f"Redis is unavailable: {exc}", code="redis_unavailable")
            return JSONResponse(body, status_code=status)
        return JSONResponse(error_body(status, str(exc)), status_code=status)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        message = f"the database is unavailable ({type(exc).__name__}): try again later"
        return JSONResponse(error_body(503, message, code="database_unavailable"), status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        messages = [f"{_field_path(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors]
        first = _field_path(tuple(errors[0].get("loc", ()))) if errors else None
        body = error_body(422, "; ".join(messages) or "invalid request", param=first)
        body["detail"] = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )
