"""Retries are safe (issue 20, point 1): a call the official ``openai`` client retries after a 504
joins the first attempt's request instead of producing a new one; an ``Idempotency-Key`` makes
/process return the same request id; and a 503 given while Kafka is down means the request was not
produced and never runs, even after the broker comes back.

Each test asserts what reached the request topic and the provider (delivered vs duplicated)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pipeline_helpers import mock_calls, wait_for
from service_helpers import high_watermarks, service_on_stack

from kafka_llm import Pipeline, load_config
from kafka_llm.devstack import Stack, StackInfo
from kafka_llm.service.limits import max_body_bytes


def _records(stack: StackInfo, topic: str) -> int:
    return sum(high_watermarks(stack, topic))


def test_openai_client_retries_join_the_first_request(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    # No worker at first and a 2 s response timeout: the first attempt is answered 504, and the
    # client retries (max_retries=2). The worker starts after the first 504; the retry must be
    # answered with the first request's result, with one record produced and one provider call.
    with service_on_stack(stack, unique_name, tmp_path, worker=False, response_timeout_seconds=2) as service:
        client = openai.OpenAI(
            base_url=f"{service.url}/v1", api_key=service.api_key, max_retries=2, timeout=30
        )
        prompt = f"retried {uuid.uuid4().hex}"
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
                )
                outcome["request_id"] = raw.headers.get("x-request-id")
                outcome["answer"] = raw.parse()
                outcome["retries"] = raw.retries_taken
            except Exception as e:  # reported by the assertion below
                outcome["error"] = e

        caller = threading.Thread(target=call)
        caller.start()
        # The first attempt has had its 504 (counted as a timeout); the client is retrying.
        wait_for(
            lambda: 'outcome="timeout"' in httpx.get(f"{service.url}/metrics", timeout=5).text,
            15,
            "the first attempt's 504",
        )
        assert _records(stack, service.topics.requests) == 1
        with Pipeline(load_config(str(service.config_path), env={})):
            caller.join(timeout=30)
            assert not caller.is_alive(), "the client got no answer within 30 s"
        assert "error" not in outcome, outcome.get("error")
        assert outcome["retries"] >= 1, "the client never retried: the test proves nothing"
        assert outcome["answer"].choices[0].message.content
        request_id = outcome["request_id"]
        assert _records(stack, service.topics.requests) == 1, "a retry produced a second request"
        assert mock_calls(stack, request_id) == 1


def test_idempotency_key_returns_the_first_request_id(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    with service_on_stack(stack, unique_name, tmp_path, worker=False) as service:
        other_key, _ = service.keys().create("other")
        body = {"provider": "mock", "model": "gpt-4o-mini", "prompt": "once"}
        idempotency = {"Idempotency-Key": uuid.uuid4().hex}
        with httpx.Client(base_url=service.url, timeout=30) as http:
            first = http.post("/process", json=body, headers={**service.headers(), **idempotency})
            again = http.post("/process", json=body, headers={**service.headers(), **idempotency})
            # The same key string from another API key is another call (keys are scoped).
            other = http.post("/process", json=body, headers={**service.headers(other_key), **idempotency})
            plain = http.post("/process", json=body, headers=service.headers())
        assert [r.status_code for r in (first, again, other, plain)] == [202] * 4
        ids = [r.json()["request_id"] for r in (first, again, other, plain)]
        assert ids[0] == ids[1]
        assert len({ids[0], ids[2], ids[3]}) == 3
        assert _records(stack, service.topics.requests) == 3  # the retry produced nothing


def test_a_rejected_call_leaves_no_claim_for_its_retry(
    stack: StackInfo, unique_name: str, tmp_path: Path
) -> None:
    # A call refused before producing (413: too large) must not claim its Idempotency-Key: the
    # corrected retry with the same key is produced and answered, not joined to a request that
    # never existed (which would wait for the response timeout, then 504).
    with service_on_stack(stack, unique_name, tmp_path, response_timeout_seconds=10) as service:
        idempotency = {
            **service.headers(),
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        # A body the HTTP limit lets through whose Kafka record (the envelope around it) is over.
        limit = max_body_bytes(1 << 20, {}, None)  # maxRequestBytes defaults to 1 MiB
        head, tail = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"', b'"}]}'
        huge = head + b"x" * (limit - 20 - len(head) - len(tail)) + tail
        small = head + b"fits" + tail
        with httpx.Client(base_url=service.url, timeout=30) as http:
            refused = http.post("/v1/chat/completions", content=huge, headers=idempotency)
            retried = http.post("/v1/chat/completions", content=small, headers=idempotency)
        assert refused.status_code == 413, refused.text
        assert retried.status_code == 200, retried.text
        assert retried.json()["choices"][0]["message"]["content"]
        assert _records(stack, service.topics.requests) == 1


def test_a_503_while_kafka_is_down_never_runs(stack_handle: Stack, unique_name: str, tmp_path: Path) -> None:
    stack = stack_handle.info
    with (
        service_on_stack(stack, unique_name, tmp_path, worker=False, produce_timeout_seconds=2) as service,
        httpx.Client(base_url=service.url, timeout=30) as http,
    ):
        prompt = f"refused {uuid.uuid4().hex}"
        stack_handle.stop_part("kafka")
        try:
            started = time.monotonic()
            refused = http.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                headers=service.headers(),
            )
            elapsed = time.monotonic() - started
        finally:
            stack_handle.start_part("kafka")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "not_produced"
        assert elapsed < 10, f"the 503 took {elapsed:.1f} s"
        # The broker is back and a worker runs: a later call is answered, the refused one never.
        with Pipeline(load_config(str(service.config_path), env={})):
            answered = None
            deadline = time.monotonic() + 40
            while answered is None or answered.status_code != 200:
                assert time.monotonic() < deadline, answered.text if answered else "no answer"
                answered = http.post(
                    "/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "after"}]},
                    headers=service.headers(),
                )
            time.sleep(1.0)  # anything still queued in the producer would have been written by now
            assert _records(stack, service.topics.requests) == 1, "the refused request was produced later"
            wait_for(lambda: mock_calls(stack, answered.headers["x-request-id"]) == 1, 10, "the later call")


@pytest.mark.parametrize("admin", [False, True])
def test_results_are_scoped_to_their_key(
    stack: StackInfo, unique_name: str, tmp_path: Path, admin: bool
) -> None:
    with service_on_stack(stack, unique_name, tmp_path, worker=False) as service:
        store = service.keys()
        other_key, _ = store.create("other", admin=admin)
        with httpx.Client(base_url=service.url, timeout=30) as http:
            accepted = http.post(
                "/process", json={"model": "gpt-4o-mini", "prompt": "mine"}, headers=service.headers()
            )
            request_id = accepted.json()["request_id"]
            mine = http.get(f"/result/{request_id}", headers=service.headers())
            theirs = http.get(f"/result/{request_id}", headers=service.headers(other_key))
            unknown = http.get(f"/result/{uuid.uuid4().hex}", headers=service.headers(other_key))
            cancel = http.delete(f"/result/{request_id}", headers=service.headers(other_key))
        assert mine.status_code == 200 and mine.json() == {"status": "pending"}
        if admin:
            assert theirs.status_code == 200
        else:
            assert theirs.status_code == 404
            assert theirs.json()["error"]["code"] == unknown.json()["error"]["code"] == "not_found"
            assert cancel.status_code in (404, 501)  # never 202 for another key's request
