"""Configuration: a YAML file plus environment overrides (see docs/configuration.md).

The YAML is loaded here and handed, as written, to the native core's parser: it alone checks every
key (unknown keys name the closest known one), applies the defaults and the environment overrides,
and names the file and the user's key path in every error. ``Config`` is a read-only view of what
the core parsed; ``Pipeline(config)`` runs that same parsed object. Secrets (API keys, passwords)
never appear in errors or in ``repr``.

``reference_markdown()`` is docs/configuration.md, generated from the core's key table
(``scripts/config-reference.py`` rewrites the file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kafka_llm import _core
from kafka_llm.errors import config_error

__all__ = ["Config", "ProviderSpec", "StreamSpec", "load_config", "parse_duration_ms", "reference_markdown"]


def parse_duration_ms(value: Any, key: str) -> int:
    """A Go-style duration ("30s", "5m", "1h30m", "500ms") or a bare number of seconds, in ms.
    Raises ConfigError naming ``key``. The core's parser decides."""
    return _core.parse_duration_ms(json.dumps(value), key)


@dataclass(frozen=True)
class StreamSpec:
    group: str
    requests_topic: str
    responses_topic: str
    dlq_topic: str
    max_handlers: int
    # `cancelURL`'s topic (None without one) and how long a cancellation is remembered.
    cancel_topic: str | None
    cancel_retention_ms: int
    # The stream's features as the core normalized them: prompt, outputSchema or outputSchemaFile
    # (an absolute path), redact, humanReview, dedupe {window_ms}, deadline_ms, ordering ("key").
    features: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    base_url: str
    kind: str
    api_key: str = field(repr=False)
    unix_socket: str
    models: tuple[str, ...]
    headers: Mapping[str, str] = field(repr=False)
    rpm: float
    tpm: float
    shared: bool
    connect_timeout_ms: int
    first_byte_timeout_ms: int
    max_concurrency: int


@dataclass(frozen=True)
class Config:
    """A parsed configuration: a view of the core's ``PipelineConfig`` (``core``)."""

    kafka: Mapping[str, str] = field(repr=False)  # may hold sasl/ssl passwords
    streams: tuple[StreamSpec, ...]
    providers: tuple[ProviderSpec, ...]
    redis_url: str = field(repr=False)  # may hold the Redis password
    redis_key_prefix: str
    result_ttl_ms: int
    default_provider: str
    retry: Mapping[str, int]
    circuit: Mapping[str, float]
    max_request_bytes: int
    model_version: str
    commit_interval_ms: int
    drain_timeout_ms: int
    lag_interval_ms: int
    exactly_once: bool
    transactional_id: str
    # otlp_endpoint (None: no spans), service_name, sample_ratio, export_interval_ms, max_queue_size
    tracing: Mapping[str, Any]
    core: _core.PipelineConfig = field(repr=False, compare=False)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka["bootstrap.servers"]

    def to_core_json(self) -> str:
        """The core's normalized view of this configuration (internal names, durations in ms)."""
        return self.core.view_json()

    @classmethod
    def _from_core(cls, core: _core.PipelineConfig) -> Config:
        view: dict[str, Any] = json.loads(core.view_json())
        stream_fields = (
            "group",
            "requests_topic",
            "responses_topic",
            "dlq_topic",
            "max_handlers",
            "cancel_topic",
            "cancel_retention_ms",
        )
        streams = tuple(
            StreamSpec(
                **{k: s[k] for k in stream_fields},
                features={k: v for k, v in s.items() if k not in stream_fields},
            )
            for s in view["streams"]
        )
        providers = tuple(ProviderSpec(**{**p, "models": tuple(p["models"])}) for p in view["providers"])
        redis = view["redis"]
        return cls(
            kafka=view["kafka"],
            streams=streams,
            providers=providers,
            redis_url=redis["url"],
            redis_key_prefix=redis["key_prefix"],
            result_ttl_ms=redis["result_ttl_ms"],
            default_provider=view["default_provider"],
            retry=view["retry"],
            circuit=view["circuit"],
            max_request_bytes=view["max_request_bytes"],
            model_version=view["model_version"],
            commit_interval_ms=view["commit_interval_ms"],
            drain_timeout_ms=view["drain_timeout_ms"],
            lag_interval_ms=view["lag_interval_ms"],
            exactly_once=view["exactly_once"],
            transactional_id=view["transactional_id"],
            tracing=view["tracing"],
            core=core,
        )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise config_error("config", f"cannot read it: {e.strerror}", file=str(path)) from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise config_error("config", f"not valid YAML: {e}", file=str(path)) from e


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} {value!r} is not plain JSON data (quote it)")


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Reads a YAML file (path), a mapping, or nothing (environment only); the core parses it with
    the environment variables of ``env`` (default: ``os.environ``). Raises ConfigError naming the
    file and the key."""
    environment = dict(os.environ if env is None else env)
    file = ""
    if source is None:
        document: Any = {}
    elif isinstance(source, Mapping):
        document = source
    else:
        file = str(source)
        document = _read_yaml(Path(source))
    try:
        document_json = json.dumps(document, default=_not_json)
    except (TypeError, ValueError) as e:
        raise config_error("config", str(e), file=file) from e
    return Config._from_core(_core.PipelineConfig.parse(document_json, environment, file))


def reference_markdown() -> str:
    """docs/configuration.md, generated from the core's key table."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by scripts/config-reference.py from the parser's key table",
        "     (cpp/src/pipeline/config_keys.cpp); tests/python/test_config.py checks it. -->",
        "",
        "A worker reads one YAML file (`kafka-llm worker --config worker.yaml`) plus the environment",
        "variables below. The core parses it once: an unknown key is an error naming the closest known",
        "key, and every error names the file and the key path as written, e.g.",
        "`invalid configuration: worker.yaml: providers[1].baseURL: must start with http:// or https://`.",
        "",
        "Durations are Go-style (`30s`, `500ms`, `1h30m`) or a bare number of seconds. `[]` marks the",
        "items of a list. A default in parentheses is derived, not a literal.",
        "",
        "| Key | Type | Default | Meaning |",
        "| --- | --- | --- | --- |",
    ]
    for path, kind, default, description in _core.config_reference():
        shown = default if default.startswith("(") else f"`{default}`" if default else ""
        lines.append(f"| `{path}` | {cell(kind)} | {cell(shown)} | {cell(description)} |")
    lines += [
        "",
        "## Environment overrides",
        "",
        "These variables override the file (an empty one is ignored): the `KAFKA_LLM_` ones, which",
        "`kafka-llm dev up` prints for the local stack, and those of the original event backend.",
        "When both name the same setting, the `KAFKA_LLM_` one wins. With them alone (no file),",
        "`kafka-llm worker`, `kafka-llm api` and `kafka-llm topics create` run against the local stack.",
        "",
        "| Variable | Overrides | Meaning |",
        "| --- | --- | --- |",
    ]
    for name, key, description in _core.config_env_overrides():
        lines.append(f"| `{name}` | `{key}` | {cell(description)} |")
    return "\n".join(lines) + "\n"
