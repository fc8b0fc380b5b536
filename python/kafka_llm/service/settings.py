"""Service settings: environment variables prefixed ``KAFKA_LLM_`` (or a ``.env`` file), read once
per process through :func:`get_settings`. Kafka, Redis and the providers come from the same YAML
file as the worker's (``KAFKA_LLM_CONFIG``), so the service and the workers never disagree."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings", "get_settings"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KAFKA_LLM_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    config: str | None = Field(
        default=None, description="the worker's YAML configuration file (environment overrides apply)"
    )
    database_url: str = Field(
        default="sqlite:///kafka-llm-service.db",
        description="API keys and the inference log: sqlite:///path or postgresql://user@host/db",
    )
    database_url_file: str | None = Field(
        default=None,
        description="a file holding the database URL (e.g. a mounted Kubernetes secret), instead of "
        "KAFKA_LLM_DATABASE_URL",
    )
    auth_enabled: bool = Field(default=True, description="require Authorization: Bearer <API key>")
    api_key_pepper: SecretStr = Field(
        default=SecretStr(""), description="a server-side secret mixed into every API key hash"
    )
    api_key_pepper_file: str | None = Field(
        default=None,
        description="a file holding the pepper (e.g. a mounted Kubernetes secret), instead of "
        "KAFKA_LLM_API_KEY_PEPPER",
    )
    key_cache_seconds: Annotated[float, Field(ge=0)] = Field(
        default=5.0, description="how long a verified key is trusted before the database is asked again"
    )
    cache_ttl_seconds: Annotated[float, Field(ge=0)] = Field(
        default=300.0, description="prompt/response cache lifetime (0 turns the cache off)"
    )
    max_body_bytes: Annotated[int, Field(gt=0)] | None = Field(
        default=None,
        description="largest request body; only lowers the default, which is what the producer can "
        "write: min(maxRequestBytes, message.max.bytes less the record overhead)",
    )
    response_timeout_seconds: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="how long a synchronous call waits for the worker (default: retry.requestTimeout + 10 s)",
    )
    produce_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        default=10.0, description="how long a request waits for the broker to acknowledge it"
    )
    redis_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        default=2.0,
        description="connect and read timeout of the service's Redis calls (an unreachable Redis is a 503 "
        "after at most this long)",
    )
    retry_grace_seconds: Annotated[float, Field(ge=0)] = Field(
        default=10.0,
        description="how long the cancel of a retryable call whose client left waits for the client's "
        "retry to join the request (Idempotency-Key or an OpenAI client's retry) before it is sent",
    )
    log_buffer_rows: Annotated[int, Field(gt=0)] = Field(
        default=10_000,
        description="inference log rows kept in memory while the database is unreachable; beyond, rows "
        "are dropped and counted (kafka_llm_log_rows_dropped_total)",
    )
    max_header_bytes: Annotated[int, Field(gt=0)] = Field(
        default=16_384,
        description="largest total size of a request's headers (names and values); above it: 431. "
        "kafka-llm api also bounds the raw request head (request line and headers) at this plus 8 KiB",
    )
    max_header_count: Annotated[int, Field(gt=0)] = Field(
        default=100, description="most headers a request may carry; above it: 431"
    )
    max_streams_per_key: Annotated[int, Field(ge=0)] = Field(
        default=32,
        description="concurrent streams (SSE answers and WebSocket connections) per API key and service "
        "process; one more is a 429 too_many_streams (0: unlimited)",
    )
    cors_origins: str = Field(
        default="",
        description="comma-separated origins allowed by CORS (exact, e.g. https://app.example.com); "
        "empty: no CORS headers at all",
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint (also OTEL_EXPORTER_OTLP_ENDPOINT)"
    )
    service_name: str = Field(default="kafka-llm-api", description="service.name of the traces")
    log_bodies: bool = Field(
        default=False,
        description="keep the request and response bodies in the inference log (JSON, each cut to 16 KiB)",
    )

    @model_validator(mode="after")
    def _read_secret_files(self) -> ServiceSettings:
        """KAFKA_LLM_<NAME>_FILE: the setting is the file's content, one trailing newline dropped; giving
        both the variable and its _FILE twin is an error. No error repeats what a file holds."""
        for name in ("database_url", "api_key_pepper"):
            path = getattr(self, name + "_file")
            if path is None:
                continue
            variable = "KAFKA_LLM_" + name.upper()
            if name in self.model_fields_set:
                raise ValueError(f"give either {variable} or {variable}_FILE, not both")
            try:
                value = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"{variable}_FILE: cannot read {path}: {type(e).__name__}") from None
            value = value.removesuffix("\n").removesuffix("\r") if value.endswith("\n") else value
            if not value:
                raise ValueError(f"{variable}_FILE: the file {path} is empty")
            setattr(self, name, SecretStr(value) if name == "api_key_pepper" else value)
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins of ``cors_origins``, blanks dropped."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache
def get_settings() -> ServiceSettings:
    """The process's settings, read on first use (not at import)."""
    return ServiceSettings()
