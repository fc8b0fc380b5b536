"""Configuration: a YAML file plus environment overrides (DESIGN section 6).

The ``messaging`` section accepts KubeAI's Helm values as they are. The result is validated here
(unknown keys, types, durations, URLs) and once more by the native core, and every error names the
key it is about. Secrets are read from the environment (``apiKeyEnv``) and never printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

from kafka_llm.errors import config_error

__all__ = ["Config", "ProviderSpec", "StreamSpec", "load_config", "parse_duration_ms"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_MS = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "ms": 1.0,
    "s": 1000.0,
    "m": 60_000.0,
    "h": 3_600_000.0,
}


def parse_duration_ms(value: Any, key: str) -> int:
    """A Go-style duration ("30s", "5m", "1h30m", "500ms") or a bare number of seconds, in ms."""
    if isinstance(value, bool):
        raise config_error(key, f"must be a duration like 30s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise config_error(key, "must not be negative")
        return round(float(value) * 1000)
    if not isinstance(value, str) or not value.strip():
        raise config_error(key, f"must be a duration like 30s or 500ms, got {value!r}")
    text = value.strip()
    if text == "0":
        return 0
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise config_error(key, f"must be a duration like 30s or 500ms, got {value!r}")
    return round(total)


@dataclass(frozen=True)
class StreamSpec:
    group: str
    requests_topic: str
    responses_topic: str
    dlq_topic: str
    max_handlers: int = 5000
    # The streaming-architecture features (DESIGN 8) as the core reads them: prompt, outputSchema or
    # outputSchemaFile (an absolute path), redact, humanReview, dedupe {window_ms}.
    features: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    base_url: str = ""
    kind: str = "openai"
    api_key: str = field(default="", repr=False)
    unix_socket: str = ""
    models: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    rpm: float = 0
    tpm: float = 0
    shared: bool = False
    connect_timeout_ms: int = 10_000
    first_byte_timeout_ms: int = 60_000
    max_concurrency: int = 0


@dataclass(frozen=True)
class Config:
    """A validated configuration. ``to_core_json()`` is what the native core reads."""

    kafka: Mapping[str, str]
    streams: tuple[StreamSpec, ...]
    providers: tuple[ProviderSpec, ...]
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "kafka-llm"
    result_ttl_ms: int = 300_000
    default_provider: str = ""
    retry: Mapping[str, int] = field(default_factory=dict)
    circuit: Mapping[str, float] = field(default_factory=dict)
    max_request_bytes: int = 1 << 20
    model_version: str = ""
    commit_interval_ms: int = 200
    drain_timeout_ms: int = 10_000

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka["bootstrap.servers"]

    def to_core_json(self) -> str:
        document: dict[str, Any] = {
            "kafka": dict(self.kafka),
            "streams": [
                {
                    "group": s.group,
                    "requests_topic": s.requests_topic,
                    "responses_topic": s.responses_topic,
                    "dlq_topic": s.dlq_topic,
                    "max_handlers": s.max_handlers,
                    **s.features,
                }
                for s in self.streams
            ],
            "redis": {
                "url": self.redis_url,
                "key_prefix": self.redis_key_prefix,
                "result_ttl_ms": self.result_ttl_ms,
            },
            "providers": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "base_url": p.base_url,
                    "api_key": p.api_key,
                    "unix_socket": p.unix_socket,
                    "models": list(p.models),
                    "headers": dict(p.headers),
                    "rpm": p.rpm,
                    "tpm": p.tpm,
                    "shared": p.shared,
                    "connect_timeout_ms": p.connect_timeout_ms,
                    "first_byte_timeout_ms": p.first_byte_timeout_ms,
                    "max_concurrency": p.max_concurrency,
                }
                for p in self.providers
            ],
            "retry": dict(self.retry),
            "circuit": dict(self.circuit),
            "max_request_bytes": self.max_request_bytes,
            "model_version": self.model_version,
            "commit_interval_ms": self.commit_interval_ms,
            "drain_timeout_ms": self.drain_timeout_ms,
        }
        if self.default_provider:
            document["default_provider"] = self.default_provider
        return json.dumps(document)


class _Section:
    """Typed access to one YAML mapping; every error names ``<path>.<field>``; unknown keys fail."""

    def __init__(self, data: Any, path: str, known: set[str]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise config_error(path or "config", "must be a mapping")
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise config_error(where, f"unknown key (known: {', '.join(sorted(known))})")
        self.data: Mapping[str, Any] = data
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def string(self, name: str, default: str = "", required: bool = False) -> str:
        value = self.data.get(name)
        if value is None:
            if required:
                raise config_error(self.key(name), "is required")
            return default
        if not isinstance(value, str):
            raise config_error(self.key(name), f"must be a string, got {type(value).__name__}")
        if required and not value:
            raise config_error(self.key(name), "must not be empty")
        return value

    def number(self, name: str, default: float, minimum: float = 0) -> float:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise config_error(self.key(name), f"must be a number, got {value!r}")
        if value < minimum:
            raise config_error(self.key(name), f"must be at least {minimum:g}")
        return float(value)

    def duration(self, name: str, default_ms: int) -> int:
        value = self.data.get(name)
        return default_ms if value is None else parse_duration_ms(value, self.key(name))

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise config_error(self.key(name), "must be true or false")
        return value


def _kafka_url(url: str, key: str, want_group: bool) -> tuple[str, str]:
    """KubeAI's URLs: ``kafka://<group>?topic=<topic>`` for requests, ``kafka://<topic>`` otherwise."""
    parsed = urlparse(url)
    if parsed.scheme != "kafka":
        raise config_error(key, f"must be a kafka:// URL, got {url!r}")
    if want_group:
        topics = parse_qs(parsed.query).get("topic", [])
        if not parsed.netloc or not topics or not topics[0]:
            raise config_error(key, "must look like kafka://<consumer group>?topic=<topic>")
        return parsed.netloc, topics[0]
    topic = parsed.netloc or parsed.path.lstrip("/")
    if not topic:
        raise config_error(key, "must look like kafka://<topic>")
    return "", topic


_TOP = {
    "messaging", "kafka", "redis", "providers", "retry", "circuit", "defaultProvider",
    "modelVersion", "maxRequestBytes", "commitInterval", "drainTimeout",
}  # fmt: skip
_MESSAGING = {"errorMaxBackoff", "streams"}
_STREAM = {
    "requestsURL", "responsesURL", "dlqURL", "maxHandlers",
    "prompt", "outputSchema", "outputSchemaFile", "redact", "humanReview", "dedupe",
}  # fmt: skip
_PROMPT = {"version", "system", "template"}
_REDACT = {"emails", "phones", "cards", "patterns", "fields"}
_PATTERN = {"name", "regex", "replacement"}
_REVIEW = {"topic", "sampleRate"}
_DEDUPE = {"window"}
_REDIS = {"url", "resultTTL", "keyPrefix"}
_PROVIDER = {
    "name", "kind", "baseURL", "apiKeyEnv", "apiKey", "unixSocket", "models", "headers", "rpm",
    "tpm", "shared", "connectTimeout", "firstByteTimeout", "maxConcurrency",
}  # fmt: skip
_RETRY = {"maxAttempts", "initialBackoff", "maxBackoff", "requestTimeout", "maxMalformedRetries"}
_CIRCUIT = {"failureThreshold", "failureRatio", "minimumOutcomes", "window", "cooldown", "maxCooldown"}
_BUILTIN_PROVIDERS = {
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
}


def _stream_features(s: _Section, base_dir: Path) -> dict[str, Any]:
    """The features of one stream, checked for shape here; the core compiles the templates,
    regular expressions (RE2) and schemas and names the key of anything it rejects."""
    out: dict[str, Any] = {}
    if s.get("prompt") is not None:
        p = _Section(s.get("prompt"), s.key("prompt"), _PROMPT)
        out["prompt"] = {
            "version": p.string("version", required=True),
            "system": p.string("system"),
            "template": p.string("template"),
        }
    schema, schema_file = s.get("outputSchema"), s.get("outputSchemaFile")
    if schema is not None and schema_file is not None:
        raise config_error(
            s.key("outputSchemaFile"), "give either outputSchema or outputSchemaFile, not both"
        )
    if schema is not None:
        if not isinstance(schema, Mapping | bool):
            raise config_error(s.key("outputSchema"), "must be a JSON schema (a mapping)")
        try:
            out["outputSchema"] = json.loads(json.dumps(schema))
        except (TypeError, ValueError) as e:
            raise config_error(s.key("outputSchema"), f"must be plain JSON: {e}") from e
    if schema_file is not None:
        out["outputSchemaFile"] = str(base_dir / s.string("outputSchemaFile", required=True))
    if s.get("redact") is not None:
        r = _Section(s.get("redact"), s.key("redact"), _REDACT)
        patterns_raw = r.get("patterns") or []
        if not isinstance(patterns_raw, list):
            raise config_error(r.key("patterns"), "must be a list of {name, regex, replacement}")
        patterns: list[dict[str, str]] = []
        for i, item in enumerate(patterns_raw):
            pattern = _Section(item, f"{r.key('patterns')}[{i}]", _PATTERN)
            name = pattern.string("name", required=True)
            if any(name == earlier["name"] for earlier in patterns):
                raise config_error(pattern.key("name"), f"duplicate pattern name {name!r}")
            patterns.append(
                {
                    "name": name,
                    "regex": pattern.string("regex", required=True),
                    "replacement": pattern.string("replacement"),
                }
            )
        fields = r.get("fields") or []
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise config_error(r.key("fields"), "must be a list of JSON field names")
        out["redact"] = {
            "emails": r.boolean("emails", False),
            "phones": r.boolean("phones", False),
            "cards": r.boolean("cards", False),
            "patterns": patterns,
            "fields": fields,
        }
    if s.get("humanReview") is not None:
        h = _Section(s.get("humanReview"), s.key("humanReview"), _REVIEW)
        rate = h.get("sampleRate")
        if rate is None:
            raise config_error(h.key("sampleRate"), "is required")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise config_error(h.key("sampleRate"), f"must be a number between 0 and 1, got {rate!r}")
        out["humanReview"] = {"topic": h.string("topic", required=True), "sampleRate": float(rate)}
    if s.get("dedupe") is not None:
        d = _Section(s.get("dedupe"), s.key("dedupe"), _DEDUPE)
        if d.get("window") is None:
            raise config_error(d.key("window"), "is required")
        window_ms = d.duration("window", 0)
        if window_ms <= 0:
            raise config_error(d.key("window"), "must be longer than 0")
        out["dedupe"] = {"window_ms": window_ms}
    return out


def load_config(
    source: str | Path | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Reads a YAML file (path), a mapping, or nothing (environment only), then applies the
    environment variables of the original event backend. Raises ConfigError naming the key."""
    env = os.environ if env is None else env
    base_dir = Path.cwd()  # outputSchemaFile is relative to the config file, else to here
    if source is None:
        raw: Any = {}
    elif isinstance(source, Mapping):
        raw = source
    else:
        path = Path(source)
        base_dir = path.resolve().parent
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise config_error("config", f"cannot read {path}: {e.strerror}") from e
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise config_error("config", f"{path} is not valid YAML: {e}") from e
    top = _Section(raw, "", _TOP)

    messaging = _Section(top.get("messaging"), "messaging", _MESSAGING)
    streams_raw = messaging.get("streams") or []
    if not isinstance(streams_raw, list):
        raise config_error("messaging.streams", "must be a list")
    streams: list[StreamSpec] = []
    for i, item in enumerate(streams_raw):
        s = _Section(item, f"messaging.streams[{i}]", _STREAM)
        group, requests = _kafka_url(s.string("requestsURL", required=True), s.key("requestsURL"), True)
        _, responses = _kafka_url(s.string("responsesURL", required=True), s.key("responsesURL"), False)
        dlq_url = s.string("dlqURL")
        dlq = _kafka_url(dlq_url, s.key("dlqURL"), False)[1] if dlq_url else f"{requests}.dlq"
        handlers = int(s.number("maxHandlers", 5000, minimum=1))
        streams.append(StreamSpec(group, requests, responses, dlq, handlers, _stream_features(s, base_dir)))
    if env.get("REQUEST_TOPIC") or env.get("KAFKA_GROUP_ID") or not streams:
        base = streams[0] if streams else StreamSpec("kafka-llm", "llm.requests", "llm.responses", "llm.dlq")
        streams = [
            dataclasses.replace(
                base,
                group=env.get("KAFKA_GROUP_ID", base.group),
                requests_topic=env.get("REQUEST_TOPIC", base.requests_topic),
                responses_topic=env.get("RESPONSE_TOPIC", base.responses_topic),
                dlq_topic=env.get("DLQ_TOPIC", base.dlq_topic),
            ),
            *streams[1:],
        ]
    elif env.get("RESPONSE_TOPIC") or env.get("DLQ_TOPIC"):
        s0 = streams[0]
        streams[0] = dataclasses.replace(
            s0,
            responses_topic=env.get("RESPONSE_TOPIC", s0.responses_topic),
            dlq_topic=env.get("DLQ_TOPIC", s0.dlq_topic),
        )

    kafka_raw = top.get("kafka") or {}
    if not isinstance(kafka_raw, Mapping):
        raise config_error("kafka", "must be a mapping of librdkafka properties")
    kafka: dict[str, str] = {}
    for name, value in kafka_raw.items():
        if isinstance(value, Mapping | list) or value is None:
            raise config_error(f"kafka.{name}", "must be a string, number or boolean")
        kafka[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        kafka["bootstrap.servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
    if not kafka.get("bootstrap.servers"):
        raise config_error("kafka.bootstrap.servers", "is required (or set KAFKA_BOOTSTRAP_SERVERS)")

    redis = _Section(top.get("redis"), "redis", _REDIS)
    redis_url = redis.string("url", "redis://127.0.0.1:6379/0")
    if env.get("REDIS_URL"):
        redis_url = env["REDIS_URL"]
    elif env.get("REDIS_HOST") or env.get("REDIS_PORT"):
        redis_url = f"redis://{env.get('REDIS_HOST', '127.0.0.1')}:{env.get('REDIS_PORT', '6379')}/0"
    if not redis_url.startswith(("redis://", "unix://")):
        raise config_error("redis.url", "must start with redis:// or unix://")

    providers_raw = top.get("providers") or []
    if not isinstance(providers_raw, list):
        raise config_error("providers", "must be a list")
    providers: list[ProviderSpec] = []
    for i, item in enumerate(providers_raw):
        p = _Section(item, f"providers[{i}]", _PROVIDER)
        name = p.string("name", required=True)
        kind = p.string("kind", "anthropic" if name == "anthropic" else "openai")
        if kind not in ("openai", "anthropic", "python"):
            raise config_error(p.key("kind"), f"must be openai, anthropic or python, got {kind!r}")
        default_url, default_env = _BUILTIN_PROVIDERS.get(name, ("", ""))
        base_url = p.string("baseURL", default_url, required=kind != "python" and not default_url)
        if kind != "python" and not base_url.startswith(("http://", "https://")):
            raise config_error(p.key("baseURL"), f"must start with http:// or https://, got {base_url!r}")
        api_key = p.string("apiKey")
        key_env = p.string("apiKeyEnv", default_env)
        if not api_key and key_env:
            api_key = env.get(key_env, "")
            if not api_key and "apiKeyEnv" in p.data:
                raise config_error(p.key("apiKeyEnv"), f"environment variable {key_env} is not set")
        models = p.get("models") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise config_error(p.key("models"), "must be a list of model names")
        headers = p.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            raise config_error(p.key("headers"), "must be a mapping of strings")
        providers.append(
            ProviderSpec(
                name=name,
                base_url=base_url.rstrip("/"),
                kind=kind,
                api_key=api_key,
                unix_socket=p.string("unixSocket"),
                models=tuple(models),
                headers=dict(headers),
                rpm=p.number("rpm", 0),
                tpm=p.number("tpm", 0),
                shared=p.boolean("shared", False),
                connect_timeout_ms=p.duration("connectTimeout", 10_000),
                first_byte_timeout_ms=p.duration("firstByteTimeout", 60_000),
                max_concurrency=int(p.number("maxConcurrency", 0)),
            )
        )
    if not providers:
        for name, (url, key_env) in _BUILTIN_PROVIDERS.items():
            if env.get(key_env):
                providers.append(ProviderSpec(name=name, base_url=url, api_key=env[key_env]))
    if not providers:
        raise config_error(
            "providers", "at least one provider is required (or set OPENAI_API_KEY / GROQ_API_KEY)"
        )
    names = [p.name for p in providers]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise config_error(f"providers[{i}].name", f"duplicate provider name {name!r}")
    default_provider = top.string("defaultProvider", providers[0].name)
    if default_provider not in names:
        raise config_error("defaultProvider", f"names no configured provider: {default_provider!r}")

    retry_s = _Section(top.get("retry"), "retry", _RETRY)
    retry: dict[str, int] = {
        "max_attempts": int(retry_s.number("maxAttempts", 6, minimum=1)),
        "initial_backoff_ms": retry_s.duration("initialBackoff", 500),
        "max_backoff_ms": retry_s.duration("maxBackoff", 30_000),
        "request_timeout_ms": retry_s.duration("requestTimeout", 120_000),
        "max_malformed_retries": int(retry_s.number("maxMalformedRetries", 1)),
        "error_max_backoff_ms": messaging.duration("errorMaxBackoff", 30_000),
    }
    circuit_s = _Section(top.get("circuit"), "circuit", _CIRCUIT)
    failure_ratio = circuit_s.number("failureRatio", 0.5)
    if failure_ratio > 1:
        raise config_error(circuit_s.key("failureRatio"), "must be between 0 and 1 (0 turns the ratio off)")
    window_ms = circuit_s.duration("window", 10_000)
    if window_ms < 10:
        raise config_error(circuit_s.key("window"), "must be at least 10ms")
    circuit: dict[str, float] = {
        "failure_threshold": int(circuit_s.number("failureThreshold", 20, minimum=1)),
        "failure_ratio": failure_ratio,
        "minimum_outcomes": int(circuit_s.number("minimumOutcomes", 20, minimum=1)),
        "window_ms": window_ms,
        "cooldown_ms": circuit_s.duration("cooldown", 2_000),
        "max_cooldown_ms": circuit_s.duration("maxCooldown", 60_000),
    }
    return Config(
        kafka=kafka,
        streams=tuple(streams),
        providers=tuple(providers),
        redis_url=redis_url,
        redis_key_prefix=redis.string("keyPrefix", "kafka-llm"),
        result_ttl_ms=redis.duration("resultTTL", 300_000),
        default_provider=default_provider,
        retry=retry,
        circuit=circuit,
        max_request_bytes=int(top.number("maxRequestBytes", 1 << 20, minimum=1)),
        model_version=top.string("modelVersion"),
        commit_interval_ms=top.duration("commitInterval", 200),
        drain_timeout_ms=top.duration("drainTimeout", 10_000),
    )
