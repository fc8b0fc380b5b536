"""The configuration as users write it: one parser (the core's), its defaults, its exact errors,
and the reference generated from its key table (docs/configuration.md)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafka_llm import Config, ConfigError, load_config
from kafka_llm.config import parse_duration_ms, reference_markdown

REPO = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "messaging": {"streams": [{"requestsURL": "kafka://g?topic=req", "responsesURL": "kafka://resp"}]},
    "kafka": {"bootstrap.servers": "127.0.0.1:9092"},
    "providers": [{"name": "mock", "baseURL": "http://127.0.0.1:1/v1"}],
}


def document(**changes: Any) -> dict[str, Any]:
    """BASE with top-level sections replaced (a value of None removes the section)."""
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def stream(**extra: Any) -> dict[str, Any]:
    return {"streams": [{"requestsURL": "kafka://g?topic=req", "responsesURL": "kafka://resp", **extra}]}


def provider(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": "mock", "baseURL": "http://127.0.0.1:1/v1", **extra}]


def _get(config: Config, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        if part.isdigit():
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value[part]
        else:
            value = getattr(value, part)
    return value


GOOD: list[tuple[str, dict[str, Any], dict[str, str], dict[str, Any]]] = [
    (
        "defaults",
        document(),
        {},
        {
            "streams.0.group": "g",
            "streams.0.requests_topic": "req",
            "streams.0.responses_topic": "resp",
            "streams.0.dlq_topic": "req.dlq",
            "streams.0.max_handlers": 5000,
            "redis_url": "redis://127.0.0.1:6379/0",
            "redis_key_prefix": "kafka-llm",
            "result_ttl_ms": 300_000,
            "default_provider": "mock",
            "retry.max_attempts": 6,
            "retry.initial_backoff_ms": 500,
            "retry.error_max_backoff_ms": 30_000,
            "circuit.window_ms": 10_000,
            "commit_interval_ms": 200,
            "drain_timeout_ms": 10_000,
            "lag_interval_ms": 5_000,
            "tracing.otlp_endpoint": None,
            "tracing.service_name": "kafka-llm-worker",
            "tracing.sample_ratio": 1,
            "tracing.export_interval_ms": 1_000,
            "max_request_bytes": 1 << 20,
            "providers.0.kind": "openai",
            "providers.0.connect_timeout_ms": 10_000,
        },
    ),
    (
        "tracing from the standard OpenTelemetry variable",
        document(tracing={"serviceName": "w1", "sampleRatio": 0.25, "exportInterval": "250ms"}),
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"},
        {
            "tracing.otlp_endpoint": "http://127.0.0.1:4318/v1/traces",
            "tracing.service_name": "w1",
            "tracing.sample_ratio": 0.25,
            "tracing.export_interval_ms": 250,
        },
    ),
    (
        "units and user names",
        document(
            messaging={"errorMaxBackoff": "1h30m", **stream(dlqURL="kafka://dead", maxHandlers=7)},
            redis={"url": "redis://r:6380/1", "resultTTL": "6m", "keyPrefix": "p"},
            retry={"maxAttempts": 2, "initialBackoff": "250ms", "requestTimeout": 90},
            providers=provider(rpm=60, models=["gpt-4*"], firstByteTimeout=".5s", baseURL="http://h/v1/"),
            commitInterval="50ms",
        ),
        {},
        {
            "streams.0.dlq_topic": "dead",
            "streams.0.max_handlers": 7,
            "retry.error_max_backoff_ms": 5_400_000,
            "redis_url": "redis://r:6380/1",
            "redis_key_prefix": "p",
            "result_ttl_ms": 360_000,
            "retry.max_attempts": 2,
            "retry.initial_backoff_ms": 250,
            "retry.request_timeout_ms": 90_000,
            "providers.0.rpm": 60,
            "providers.0.models": ("gpt-4*",),
            "providers.0.first_byte_timeout_ms": 500,
            "providers.0.base_url": "http://h/v1",
            "commit_interval_ms": 50,
        },
    ),
    (
        "environment overrides",
        document(kafka={"bootstrap.servers": "file:9092"}),
        {
            "KAFKA_BOOTSTRAP_SERVERS": "env:9092",
            "REQUEST_TOPIC": "r2",
            "KAFKA_GROUP_ID": "g2",
            "RESPONSE_TOPIC": "s2",
            "DLQ_TOPIC": "d2",
            "REDIS_URL": "redis://env:6379/3",
        },
        {
            "kafka.bootstrap.servers": "env:9092",
            "streams.0.group": "g2",
            "streams.0.requests_topic": "r2",
            "streams.0.responses_topic": "s2",
            "streams.0.dlq_topic": "d2",
            "redis_url": "redis://env:6379/3",
        },
    ),
    (
        "environment only",
        {},
        {"KAFKA_BOOTSTRAP_SERVERS": "k:1", "OPENAI_API_KEY": "sk-1", "REDIS_HOST": "h", "REDIS_PORT": "7"},
        {
            "streams.0.requests_topic": "llm.requests",
            "streams.0.group": "kafka-llm",
            "streams.0.dlq_topic": "llm.dlq",
            "providers.0.name": "openai",
            "providers.0.base_url": "https://api.openai.com/v1",
            "providers.0.api_key": "sk-1",
            "redis_url": "redis://h:7/0",
        },
    ),
    (
        # What `kafka-llm dev up` prints: enough on its own; the KAFKA_LLM_ names win over the old ones.
        "local stack environment",
        {},
        {
            "KAFKA_LLM_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "KAFKA_BOOTSTRAP_SERVERS": "old:1",
            "KAFKA_LLM_REDIS_URL": "redis://:pw@127.0.0.1:2/0",
            "REDIS_URL": "redis://old:3/0",
            "KAFKA_LLM_PROVIDER_URL": "http://127.0.0.1:4/v1",
        },
        {
            "kafka.bootstrap.servers": "127.0.0.1:1",
            "redis_url": "redis://:pw@127.0.0.1:2/0",
            "streams.0.requests_topic": "llm.requests",
            "providers.0.name": "local",
            "providers.0.kind": "openai",
            "providers.0.base_url": "http://127.0.0.1:4/v1",
            "providers.0.api_key": "",
            "default_provider": "local",
        },
    ),
    (
        "built-in provider key from its variable",
        document(
            providers=[{"name": "groq"}, {"name": "claude", "kind": "anthropic", "baseURL": "https://a/v1"}]
        ),
        {"GROQ_API_KEY": "gsk-1"},
        {
            "providers.0.base_url": "https://api.groq.com/openai/v1",
            "providers.0.api_key": "gsk-1",
            "providers.1.kind": "anthropic",
            "default_provider": "groq",
        },
    ),
    (
        "stream features normalized",
        document(messaging=stream(dedupe={"window": "10m"}, humanReview={"topic": "rv", "sampleRate": 0.5})),
        {},
        {
            "streams.0.features": {
                "dedupe": {"window_ms": 600_000},
                "humanReview": {"topic": "rv", "sampleRate": 0.5},
            }
        },
    ),
    (
        "exactly-once for the worker, and off for one stream",
        document(
            messaging={
                "streams": [
                    {"requestsURL": "kafka://g?topic=a", "responsesURL": "kafka://ra"},
                    {"requestsURL": "kafka://g?topic=b", "responsesURL": "kafka://rb", "exactlyOnce": False},
                ]
            },
            exactlyOnce=True,
        ),
        {},
        {
            "exactly_once": True,
            "streams.0.features": {"exactlyOnce": True},
            "streams.1.features": {},
        },
    ),
    (
        "a cancel topic",
        document(messaging=stream(cancelURL="kafka://llm.cancel", cancelRetention="10m")),
        {},
        {"streams.0.cancel_topic": "llm.cancel", "streams.0.cancel_retention_ms": 600_000},
    ),
    (
        "per-key ordering and the lag interval",
        document(messaging=stream(ordering="key"), lagInterval="250ms"),
        {},
        {"streams.0.features": {"ordering": "key"}, "lag_interval_ms": 250},
    ),
    (
        "kafka properties as strings",
        document(kafka={"bootstrap.servers": "b:1", "linger.ms": 5, "enable.idempotence": True}),
        {},
        {"kafka.linger.ms": "5", "kafka.enable.idempotence": "true"},
    ),
]


@pytest.mark.parametrize(("name", "doc", "env", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_good_configurations_give_their_values(
    name: str, doc: dict[str, Any], env: dict[str, str], expected: dict[str, Any]
) -> None:
    config = load_config(doc, env=env)
    for path, value in expected.items():
        if path.startswith("kafka."):
            assert config.kafka[path.removeprefix("kafka.")] == value, path
        else:
            assert _get(config, path) == value, path


BAD: list[tuple[str, dict[str, Any], dict[str, str], str, str]] = [
    (
        "unknown key with suggestion",
        document(retry={"maxAtempts": 3}),
        {},
        "retry.maxAtempts",
        "unknown key; did you mean maxAttempts?",
    ),
    (
        "snake case of exactlyOnce",
        document(exactly_once=True),
        {},
        "exactly_once",
        "unknown key; did you mean exactlyOnce?",
    ),
    (
        "unknown top-level key",
        document(workers=3),
        {},
        "workers",
        "unknown key (known: messaging, kafka, redis, providers, retry, circuit, defaultProvider, "
        "modelVersion, maxRequestBytes, commitInterval, drainTimeout, exactlyOnce, transactionalId, "
        "lagInterval, tracing)",
    ),
    (
        "exactlyOnce not a boolean",
        document(messaging=stream(exactlyOnce="yes")),
        {},
        "messaging.streams[0].exactlyOnce",
        "must be true or false",
    ),
    (
        "unknown stream key",
        document(messaging=stream(requestURL="kafka://x")),
        {},
        "messaging.streams[0].requestURL",
        "unknown key; did you mean requestsURL?",
    ),
    (
        "wrong type",
        document(providers=provider(shared="yes")),
        {},
        "providers[0].shared",
        "must be true or false",
    ),
    (
        "not a number",
        document(retry={"maxAttempts": "six"}),
        {},
        "retry.maxAttempts",
        'must be a number, got "six"',
    ),
    (
        "bad duration",
        document(retry={"initialBackoff": "soon"}),
        {},
        "retry.initialBackoff",
        'must be a duration like 30s or 500ms, got "soon"',
    ),
    (
        "bad kafka URL",
        document(messaging={"streams": [{"requestsURL": "kafka://only-topic", "responsesURL": "kafka://r"}]}),
        {},
        "messaging.streams[0].requestsURL",
        "must look like kafka://<consumer group>?topic=<topic>",
    ),
    (
        "bad base URL",
        document(providers=provider(baseURL="ftp://x")),
        {},
        "providers[0].baseURL",
        "must start with http:// or https://",
    ),
    (
        "missing required key",
        document(messaging={"streams": [{"requestsURL": "kafka://g?topic=t"}]}),
        {},
        "messaging.streams[0].responsesURL",
        "is required",
    ),
    (
        "bad enum",
        document(providers=provider(kind="grpc")),
        {},
        "providers[0].kind",
        'must be openai, anthropic or python, got "grpc"',
    ),
    (
        "unknown ordering mode",
        document(messaging=stream(ordering="partition")),
        {},
        "messaging.streams[0].ordering",
        'must be none or key, got "partition"',
    ),
    (
        "cancel topic is the request topic",
        document(messaging=stream(cancelURL="kafka://req")),
        {},
        "messaging.streams[0].cancelURL",
        "must name a topic of its own, not the request or response topic",
    ),
    (
        "lag interval too short",
        document(lagInterval="10ms"),
        {},
        "lagInterval",
        "must be at least 100ms",
    ),
    (
        "tracing endpoint not a URL",
        document(tracing={"otlpEndpoint": "127.0.0.1:4318"}),
        {},
        "tracing.otlpEndpoint",
        "must be an http:// or https:// URL",
    ),
    (
        "no provider",
        document(providers=None),
        {},
        "providers",
        "at least one provider is required (or set KAFKA_LLM_PROVIDER_URL, OPENAI_API_KEY or GROQ_API_KEY)",
    ),
    (
        "no brokers",
        document(kafka=None),
        {},
        "kafka.bootstrap.servers",
        "is required (or set KAFKA_LLM_BOOTSTRAP_SERVERS or KAFKA_BOOTSTRAP_SERVERS)",
    ),
    ("env override bad", document(), {"REDIS_PORT": "six"}, "REDIS_PORT", "must be a port number"),
    (
        "env override bad URL",
        document(),
        {"REDIS_URL": "http://h:1"},
        "REDIS_URL",
        "must start with redis:// or unix://",
    ),
    (
        "api key variable unset",
        document(providers=provider(apiKeyEnv="MY_PROVIDER_KEY")),
        {},
        "providers[0].apiKeyEnv",
        "environment variable MY_PROVIDER_KEY is not set",
    ),
    (
        "duration too short",
        document(circuit={"window": "5ms"}),
        {},
        "circuit.window",
        "must be at least 10ms",
    ),
    (
        "outputSchemaFile missing",
        document(messaging=stream(outputSchemaFile="/nonexistent/kafka-llm-schema.json")),
        {},
        "messaging.streams[0].outputSchemaFile",
        "cannot read /nonexistent/kafka-llm-schema.json: No such file or directory",
    ),
]


@pytest.mark.parametrize(("name", "doc", "env", "key", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_configurations_fail_with_the_exact_message(
    name: str, doc: dict[str, Any], env: dict[str, str], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(doc, env=env)
    assert str(error.value) == f"invalid configuration: {key}: {reason}"
    assert error.value.key == key


def test_errors_name_the_file_and_schema_files_are_relative_to_it(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(document(retry={"maxAtempts": 3})))
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value) == (
        f"invalid configuration: {path}: retry.maxAtempts: unknown key; did you mean maxAttempts?"
    )
    assert error.value.key == "retry.maxAtempts"

    path.write_text(yaml.safe_dump(document(messaging=stream(outputSchemaFile="missing.json"))))
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    missing = tmp_path.resolve() / "missing.json"
    assert str(error.value) == (
        f"invalid configuration: {path}: messaging.streams[0].outputSchemaFile: "
        f"cannot read {missing}: No such file or directory"
    )
    (tmp_path / "missing.json").write_text('{"type": "object"}')
    loaded = load_config(path, env={})
    assert loaded.streams[0].features == {"outputSchemaFile": str(missing)}

    path.write_text("messaging: [unclosed")
    with pytest.raises(ConfigError) as error:
        load_config(path, env={})
    assert str(error.value).startswith(f"invalid configuration: {path}: config: not valid YAML: ")


def test_secrets_are_in_no_error_and_no_repr() -> None:
    secret = "sk-do-not-print-0123"
    doc = document(
        providers=provider(
            apiKey=secret, connectTimeout=secret, headers={"Authorization": f"Bearer {secret}"}
        ),
        kafka={"bootstrap.servers": "b:1", "sasl.password": secret},
    )
    with pytest.raises(ConfigError) as error:
        load_config(doc, env={})
    assert str(error.value) == (
        'invalid configuration: providers[0].connectTimeout: must be a duration like 30s or 500ms, got "***"'
    )
    del doc["providers"][0]["connectTimeout"]
    doc["redis"] = {"url": f"redis://:{secret}@127.0.0.1:6379/0"}
    config = load_config(doc, env={})
    assert config.providers[0].api_key == secret
    assert secret not in repr(config)
    assert secret not in repr(config.providers[0])


def test_parse_duration_ms_is_the_cores() -> None:
    assert parse_duration_ms("1h30m", "--since") == 5_400_000
    assert parse_duration_ms(2, "--since") == 2000
    with pytest.raises(ConfigError) as error:
        parse_duration_ms("yesterday", "--since")
    assert (
        str(error.value)
        == 'invalid configuration: --since: must be a duration like 30s or 500ms, got "yesterday"'
    )


def test_the_reference_doc_matches_the_parsers_key_table() -> None:
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), "run: python scripts/config-reference.py"
    check = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "config-reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert (check.returncode, check.stderr) == (0, "")
