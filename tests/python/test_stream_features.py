"""Per-stream streaming-architecture features on the real stack (issue 7; docs/formats.md and
docs/configuration.md): prompt templates with a version and the hash of what is sent, PII
redaction before the provider call, output JSON-schema validation, human-review sampling and
dedupe.

The mock provider records the bodies it received when a request carries
``"mock": {"record_body": true}`` and answers with a given text for ``"mock": {"content": ...}``;
neither key feeds the prompt hash, so they do not change what dedupe sees.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_helpers import (
    Topics,
    all_mock_calls,
    envelope,
    headers,
    make_config,
    make_topics,
    mock_calls,
    mock_request_bodies,
    produce,
    read_until,
    result_record,
    worker_env,
)

from kafka_llm import ConfigError, Pipeline, load_config
from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo

# kPromptHashFields of cpp/include/kafka_llm/format/prompt_hash.hpp.
PROMPT_HASH_FIELDS = {
    "best_of", "dimensions", "echo", "encoding_format", "frequency_penalty", "function_call", "functions",
    "input", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "messages", "model", "n",
    "parallel_tool_calls", "presence_penalty", "prompt", "response_format", "seed", "stop", "suffix",
    "system", "temperature", "tool_choice", "tools", "top_k", "top_logprobs", "top_p",
}  # fmt: skip
RECORD = {"mock": {"record_body": True}}


def expected_prompt_hash(sent: dict[str, Any]) -> str:
    """The prompt hash of a body computed independently of the core (ASCII text, no floats)."""
    canonical = {name: value for name, value in sent.items() if name in PROMPT_HASH_FIELDS}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sample_point(request_id: str) -> float:
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64


def responses_by_id(records: list[k.Record]) -> dict[str, k.Record]:
    return {r.key.decode(): r for r in records if r.key is not None}


def test_provider_sees_only_redacted_text_and_the_input_topic_keeps_the_original(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    redact = {
        "emails": True,
        "phones": True,
        "cards": True,
        "patterns": [{"name": "employee_id", "regex": r"E\d{6}", "replacement": "[EMPLOYEE_ID]"}],
        "fields": ["ssn", "password"],
    }
    text = (
        "I am E123456, mail jane.doe@example.com, call +1 415 555 0134, "
        "card 4111 1111 1111 1111, order 4111111111111112"
    )
    request_id = f"{unique_name}-pii"
    extra = {**RECORD, "context": {"customer": {"ssn": "123-45-6789"}, "password": "hunter2"}}
    raw = json.dumps(envelope(text, request_id=request_id, body_extra=extra)).encode()
    with Pipeline(make_config(stack, topics, stream_extra={"redact": redact})) as pipeline:
        produce(stack, topics.requests, [raw])
        responses = read_until(stack, topics.responses, lambda r: len(r) >= 1)
        stats = pipeline.stats()
        prometheus = pipeline.metrics_text()

    [sent] = mock_request_bodies(stack, request_id)
    assert sent["messages"][0]["content"] == (
        "I am [EMPLOYEE_ID], mail [EMAIL], call [PHONE], card [CARD], order 4111111111111112"
    )
    assert sent["context"] == {"customer": {"ssn": "[REDACTED]"}, "password": "[REDACTED]"}
    sent_text = json.dumps(sent)
    for secret in (
        "E123456",
        "jane.doe@example.com",
        "415 555 0134",
        "4111 1111 1111 1111",
        "123-45",
        "hunter2",
    ):
        assert secret not in sent_text
    # The original record stays on the input topic byte for byte.
    [original] = read_until(stack, topics.requests, lambda r: len(r) >= 1)
    assert original.value == raw

    response = json.loads(responses[0].value)
    assert response["status_code"] == 200
    assert response["body"]["choices"][0]["message"]["content"].startswith("mock reply: I am [EMPLOYEE_ID],")
    assert headers(responses[0])["prompt_hash"] == expected_prompt_hash(sent)
    assert "prompt_version" not in headers(responses[0])
    assert stats["redactions"][topics.requests] == {
        "pattern:employee_id": 1, "email": 1, "phone": 1, "card": 1, "field:ssn": 1, "field:password": 1,
    }  # fmt: skip
    assert f'kafka_llm_redactions_total{{stream="{topics.requests}",rule="card"}} 1' in prometheus


def test_prompt_template_rewrites_chat_and_completions_and_tags_every_output(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    prompt = {"version": "v2", "system": "You are terse.", "template": "Summarize: {{input}}"}
    chat_id, completion_id, tokens_id = f"{unique_name}-chat", f"{unique_name}-cmpl", f"{unique_name}-tok"
    requests = [
        envelope("the quick brown fox", request_id=chat_id, body_extra=RECORD),
        {
            "path": "/v1/completions",
            "request_id": completion_id,
            "body": {"model": "mock-model", "prompt": "abc", **RECORD},
        },
        {
            "path": "/v1/completions",
            "request_id": tokens_id,
            "body": {"model": "mock-model", "prompt": [1, 2, 3]},
        },
    ]
    with Pipeline(make_config(stack, topics, stream_extra={"prompt": prompt})):
        produce(stack, topics.requests, [json.dumps(r).encode() for r in requests])
        responses = responses_by_id(read_until(stack, topics.responses, lambda r: len(r) >= 3))
        dead = read_until(stack, topics.dlq, lambda r: len(r) >= 1)

    [chat_sent] = mock_request_bodies(stack, chat_id)
    assert chat_sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarize: the quick brown fox"},
    ]
    [completion_sent] = mock_request_bodies(stack, completion_id)
    assert completion_sent["prompt"] == "You are terse.\n\nSummarize: abc"
    for request_id, sent in ((chat_id, chat_sent), (completion_id, completion_sent)):
        record = responses[request_id]
        h = headers(record)
        assert h["prompt_version"] == "v2" and h["model_version"] == "mock-model"
        assert h["prompt_hash"] == expected_prompt_hash(sent)
        response = json.loads(record.value)
        assert response["status_code"] == 200 and response["prompt_version"] == "v2"
        stored = result_record(stack, request_id)
        assert stored is not None and stored["status"] == "done" and stored["prompt_version"] == "v2"
    assert json.loads(responses[chat_id].value)["body"]["choices"][0]["message"]["content"].startswith(
        "mock reply: Summarize: the quick"
    )

    # Token ids cannot be templated: a 400, dead-lettered, never sent.
    refused = json.loads(responses[tokens_id].value)
    assert refused["status_code"] == 400
    assert "token ids" in refused["body"]["error"]["message"] and "prompt_version" not in refused
    assert headers(dead[0])["x-error-class"] == "non_retryable"
    assert mock_calls(stack, tokens_id) == 0


def test_schema_violations_go_to_the_dlq_with_the_raw_output(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    schema_file = tmp_path / "schema.json"
    schema = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["pos", "neg"]}}}
    schema_file.write_text(json.dumps(schema))
    big = '"' + "x" * 70_000 + '"'
    outputs = {"ok": '{"label": "pos"}', "enum": '{"label": "maybe"}', "echo": None, "big": big}
    raws = {}
    for name, content in outputs.items():
        mock = {"mock": {"content": content}} if content is not None else {}
        raws[name] = json.dumps(envelope(name, request_id=f"{unique_name}-{name}", body_extra=mock)).encode()
    config = make_config(stack, topics, stream_extra={"outputSchemaFile": str(schema_file)})
    with Pipeline(config) as pipeline:
        produce(stack, topics.requests, list(raws.values()))
        responses = responses_by_id(read_until(stack, topics.responses, lambda r: len(r) >= 4))
        # Dead letters keep the original (here keyless) record: find them by x-request-id.
        dead = {headers(r)["x-request-id"]: r for r in read_until(stack, topics.dlq, lambda r: len(r) >= 3)}
        stats = pipeline.stats()

    ok = json.loads(responses[f"{unique_name}-ok"].value)
    assert ok["status_code"] == 200
    stored_ok = result_record(stack, f"{unique_name}-ok")
    assert (
        stored_ok is not None and stored_ok["status"] == "done" and stored_ok["output"] == '{"label": "pos"}'
    )
    assert f"{unique_name}-ok" not in dead

    for name in ("enum", "echo", "big"):
        request_id = f"{unique_name}-{name}"
        response = json.loads(responses[request_id].value)
        assert response["status_code"] == 422
        assert response["body"]["error"]["type"] == "schema_violation"
        stored = result_record(stack, request_id)
        assert stored is not None and stored["status"] == "error" and stored["status_code"] == 422
        record = dead[request_id]
        assert record.value == raws[name]  # the original request, byte for byte
        h = headers(record)
        assert h["x-error-class"] == "schema_violation" and h["x-http-status"] == "422"
        assert h["x-prompt-hash"] == headers(responses[request_id])["prompt_hash"]
    enum_headers = headers(dead[f"{unique_name}-enum"])
    assert enum_headers["x-model-output"] == '{"label": "maybe"}'
    assert "x-model-output-truncated" not in enum_headers
    assert "/label" in json.loads(responses[f"{unique_name}-enum"].value)["body"]["error"]["message"]
    assert headers(dead[f"{unique_name}-echo"])["x-model-output"].startswith("mock reply: echo")
    big_headers = headers(dead[f"{unique_name}-big"])
    assert big_headers["x-model-output"] == big[: 64 * 1024]
    assert big_headers["x-model-output-truncated"] == str(len(big))
    assert stats["dlq"] == {"schema_violation": 3}


def test_human_review_gets_a_deterministic_sample_of_successful_outputs(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=2)
    review_topic = f"{unique_name}-review"
    k.create_topics(stack.bootstrap_servers, [review_topic], 1)
    ids = [f"{unique_name}-{i}" for i in range(60)]
    expected = {request_id for request_id in ids if sample_point(request_id) < 0.3}
    assert 0 < len(expected) < len(ids)
    # An id the sample would take, but its request fails: errors never go to review.
    failing = next(
        f"{unique_name}-failing-{n}"
        for n in itertools.count()
        if sample_point(f"{unique_name}-failing-{n}") < 0.3
    )
    values = [
        json.dumps(envelope(f"review {i}", request_id=request_id)).encode()
        for i, request_id in enumerate(ids)
    ]
    values.append(
        json.dumps(envelope("x", request_id=failing, body_extra={"mock": {"fault": "400"}})).encode()
    )
    extra = {"humanReview": {"topic": review_topic, "sampleRate": 0.3}}
    with Pipeline(make_config(stack, topics, stream_extra=extra)) as pipeline:
        produce(stack, topics.requests, values, spread_over=2)
        responses = responses_by_id(read_until(stack, topics.responses, lambda r: len(r) >= len(values)))
        review = read_until(stack, review_topic, lambda r: len(r) >= len(expected))
        stats = pipeline.stats()

    assert len(responses) == len(values)
    assert sorted(r.key.decode() for r in review if r.key is not None) == sorted(expected)
    for record in review:
        assert record.key is not None
        response = responses[record.key.decode()]
        assert record.value == response.value
        assert headers(record) == headers(response)
    assert stats["human_review"] == {topics.requests: len(expected)}
    assert json.loads(responses[failing].value)["status_code"] == 400


def test_dedupe_makes_one_provider_call_for_identical_requests(stack: StackInfo, unique_name: str) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    ids = [f"{unique_name}-{i}" for i in range(5)]
    # The provider takes 300 ms, so the copies find the first one pending and wait for it.
    slow = {"mock": {"latency_ms": 300}}
    values = [json.dumps(envelope("dedupe me", request_id=i, body_extra=slow)).encode() for i in ids]
    late_id, failed_id, retried_id = f"{unique_name}-late", f"{unique_name}-failed", f"{unique_name}-retried"
    with Pipeline(make_config(stack, topics, stream_extra={"dedupe": {"window": "1m"}})) as pipeline:
        produce(stack, topics.requests, values)
        first_batch = responses_by_id(read_until(stack, topics.responses, lambda r: len(r) >= len(ids)))
        # Done by now: a later copy is served at once.
        produce(stack, topics.requests, [json.dumps(envelope("dedupe me", request_id=late_id)).encode()])
        # An earlier result that errored does not stand in: the copy calls the provider.
        fault = {"mock": {"fault": "400"}}
        produce(
            stack,
            topics.requests,
            [json.dumps(envelope("other", request_id=failed_id, body_extra=fault)).encode()],
        )
        read_until(stack, topics.dlq, lambda r: len(r) >= 1)
        produce(stack, topics.requests, [json.dumps(envelope("other", request_id=retried_id)).encode()])
        everything = responses_by_id(read_until(stack, topics.responses, lambda r: len(r) >= len(ids) + 3))
        stats = pipeline.stats()

    calls = all_mock_calls(stack)
    assert sum(calls.get(i, 0) for i in [*ids, late_id]) == 1
    [called] = [i for i in ids if calls.get(i, 0) == 1]
    contents = set()
    for request_id in [*ids, late_id]:
        record = everything[request_id] if request_id == late_id else first_batch[request_id]
        response = json.loads(record.value)
        assert response["status_code"] == 200
        contents.add(response["body"]["choices"][0]["message"]["content"])
        h = headers(record)
        if request_id == called:
            assert "x-dedupe-of" not in h and response["attempts"] == 1
        else:
            assert h["x-dedupe-of"] == called and response["attempts"] == 0
        stored = result_record(stack, request_id)
        assert stored is not None and stored["status"] == "done" and stored["request_id"] == request_id
    assert len(contents) == 1
    assert calls.get(failed_id) == 1 and calls.get(retried_id) == 1
    assert json.loads(everything[retried_id].value)["status_code"] == 200
    assert "x-dedupe-of" not in headers(everything[retried_id])
    assert stats["requests_by_outcome"]["deduplicated"] == len(ids)  # four copies plus the late one
    assert stats["cache_hits"] >= len(ids)


def _topics(name: str) -> Topics:
    return Topics(f"{name}-req", f"{name}-resp", f"{name}-dlq", f"{name}-workers")


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"humanReview": {"topic": "r", "sampleRate": 1.5}}, "humanReview.sampleRate"),
        ({"humanReview": {"topic": "r", "sampleRate": -0.1}}, "humanReview.sampleRate"),
        ({"humanReview": {"topic": "r"}}, "humanReview.sampleRate"),
        ({"prompt": {"template": "{{input}}"}}, "prompt.version"),
        ({"prompt": {"version": "v1", "tmpl": "x"}}, "prompt.tmpl"),
        ({"dedupe": {"window": "soon"}}, "dedupe.window"),
        ({"dedupe": {"window": "0s"}}, "dedupe.window"),
        ({"redact": {"emails": "yes"}}, "redact.emails"),
        ({"redact": {"patterns": [{"regex": "a"}]}}, "redact.patterns[0].name"),
        (
            {"redact": {"patterns": [{"name": "a", "regex": "a"}, {"name": "a", "regex": "b"}]}},
            "redact.patterns[1].name",
        ),
        ({"outputSchema": {"type": "object"}, "outputSchemaFile": "s.json"}, "outputSchemaFile"),
        ({"outputSchema": ["not", "a", "schema"]}, "outputSchema"),
    ],
)
def test_bad_feature_values_fail_naming_the_key(
    stack: StackInfo, unique_name: str, extra: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as error:
        make_config(stack, _topics(unique_name), stream_extra=extra)
    assert error.value.key == f"messaging.streams[0].{key}"
    assert f"messaging.streams[0].{key}" in str(error.value)


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        (
            {"redact": {"patterns": [{"name": "ok", "regex": "a"}, {"name": "bad", "regex": r"E(\d"}]}},
            "redact.patterns[1].regex",
            "invalid RE2 regular expression",
        ),
        ({"redact": {"patterns": [{"name": "la", "regex": "a(?=b)"}]}}, "redact.patterns[0].regex", "RE2"),
        ({"prompt": {"version": "v1", "template": "Hi {{name}}"}}, "prompt.template", "{{name}}"),
        (
            {"outputSchema": {"type": "object", "properties": {"label": {"enumm": ["a"]}}}},
            "outputSchema",
            "/properties/label",
        ),
    ],
)
def test_the_core_rejects_what_only_it_can_check_naming_the_key(
    stack: StackInfo, unique_name: str, extra: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as error:
        Pipeline(make_config(stack, _topics(unique_name), stream_extra=extra))
    assert error.value.key == f"messaging.streams[0].{key}"
    assert reason in str(error.value)


def test_output_schema_file_is_relative_to_the_config_file_and_checked_at_worker_start(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    (tmp_path / "schema.json").write_text('{"type": "object", "frobnicate": true}')
    config = tmp_path / "worker.yaml"
    topics = _topics(unique_name)
    config.write_text(
        yaml.safe_dump(
            {
                "messaging": {
                    "streams": [
                        {
                            "requestsURL": f"kafka://{topics.group}?topic={topics.requests}",
                            "responsesURL": f"kafka://{topics.responses}",
                            "outputSchemaFile": "schema.json",
                        }
                    ]
                },
                "kafka": {"bootstrap.servers": stack.bootstrap_servers},
                "providers": [{"name": "mock", "baseURL": stack.provider_url}],
            }
        )
    )
    # The schema is found next to the config file (not in the working directory) and checked at load.
    with pytest.raises(ConfigError) as error:
        load_config(config, env={})
    assert error.value.key == "messaging.streams[0].outputSchemaFile"
    assert "invalid JSON schema" in str(error.value) and "frobnicate" in str(error.value)
    result = subprocess.run(
        [sys.executable, "-m", "kafka_llm.cli", "worker", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=worker_env(),
    )
    assert result.returncode == 2
    assert "messaging.streams[0].outputSchemaFile: invalid JSON schema" in result.stderr
    assert "frobnicate" in result.stderr


def test_environment_overrides_keep_the_stream_features(stack: StackInfo, unique_name: str) -> None:
    document = {
        "messaging": {
            "streams": [
                {
                    "requestsURL": f"kafka://g?topic={unique_name}-req",
                    "responsesURL": f"kafka://{unique_name}-resp",
                    "dedupe": {"window": "10m"},
                    "humanReview": {"topic": "review", "sampleRate": 0.05},
                }
            ]
        },
        "kafka": {"bootstrap.servers": stack.bootstrap_servers},
        "providers": [{"name": "mock", "baseURL": stack.provider_url}],
    }
    config = load_config(document, env={"REQUEST_TOPIC": "other-req", "DLQ_TOPIC": "other-dlq"})
    stream = config.streams[0]
    assert (stream.requests_topic, stream.dlq_topic) == ("other-req", "other-dlq")
    assert stream.features == {
        "dedupe": {"window_ms": 600_000},
        "humanReview": {"topic": "review", "sampleRate": 0.05},
    }
    core = json.loads(config.to_core_json())["streams"][0]
    assert core["dedupe"] == {"window_ms": 600_000} and core["requests_topic"] == "other-req"


def test_streamed_frames_carry_the_prompt_version_and_review_gets_the_assembled_response(
    stack: StackInfo, unique_name: str
) -> None:
    topics = make_topics(stack, unique_name, partitions=1)
    review_topic = f"{unique_name}-review"
    k.create_topics(stack.bootstrap_servers, [review_topic], 1)
    extra = {
        "prompt": {"version": "v7", "template": "Echo: {{input}}"},
        "humanReview": {"topic": review_topic, "sampleRate": 1},
    }
    request_id = f"{unique_name}-stream"
    with Pipeline(make_config(stack, topics, stream_extra=extra)):
        produce(
            stack,
            topics.requests,
            [json.dumps(envelope("tokens please", request_id=request_id, stream=True)).encode()],
        )
        frames = read_until(
            stack, topics.responses, lambda r: any(json.loads(x.value).get("done") for x in r)
        )
        [review] = read_until(stack, review_topic, lambda r: len(r) >= 1)
    assert len(frames) > 2
    hashes = {headers(f)["prompt_hash"] for f in frames}
    assert len(hashes) == 1 and all(headers(f)["prompt_version"] == "v7" for f in frames)
    text = "".join(
        c["choices"][0]["delta"].get("content", "")
        for c in (json.loads(f.value)["chunk"] for f in frames[:-1])
        if c["choices"]
    )
    assert text.startswith("mock reply: Echo: tokens please")
    assembled = json.loads(review.value)
    assert assembled["prompt_version"] == "v7" and assembled["status_code"] == 200
    assert assembled["body"]["choices"][0]["message"]["content"] == text
    assert headers(review)["prompt_hash"] in hashes
