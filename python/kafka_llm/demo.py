"""``make demo``: the whole product on one machine, start to finish.

Starts the local stack (Apache Kafka in KRaft mode, Redis, the native mock provider), runs a real
``kafka-llm worker`` process, sends requests of every kind (plain, KubeAI-format, streamed, rate
limited then retried, failing, poison), prints what comes out on the response and dead-letter
topics and in Redis, then stops everything it started, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kafka_llm import kafka as k
from kafka_llm._paths import cache_dir
from kafka_llm.devstack import Stack, StackInfo


def _say(text: str = "") -> None:
    print(text, flush=True)


def _requests(run: str) -> list[tuple[str, dict[str, Any], str]]:
    chat = "/v1/chat/completions"
    return [
        (f"{run}-hello", {"path": chat, "body": {"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "Hello! What is Kafka?"}]}}, "a chat completion"),
        (f"{run}-kubeai", {"metadata": {"ticket": 4711}, "path": "/v1/completions",
                           "body": {"model": "gpt-4o-mini", "prompt": "Summarise: Kafka is a log."}},
         "a KubeAI-format completion (metadata echoed back)"),
        (f"{run}-embed", {"path": "/v1/embeddings", "body": {"model": "text-embedding-3-small",
                                                             "input": "kafka"}}, "an embedding"),
        (f"{run}-stream", {"path": chat, "body": {"model": "gpt-4o-mini", "stream": True, "max_tokens": 6,
                                                  "messages": [{"role": "user", "content": "Stream it"}]}},
         "a streamed completion (token frames)"),
        (f"{run}-429", {"path": chat, "body": {"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": "busy provider"}],
            "mock": {"fault": "429", "fault_times": 2, "retry_after": 1}}},
         "429 twice with Retry-After: 1, then success"),
        (f"{run}-404", {"path": chat, "body": {"model": "no-such-model", "messages": [
            {"role": "user", "content": "?"}], "mock": {"fault": "404"}}},
         "a provider 404: error envelope + dead letter"),
    ]  # fmt: skip


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def run(stack: StackInfo, workdir: Path) -> int:
    run_id = secrets.token_hex(3)
    requests_topic, responses_topic, dlq_topic = (
        f"demo-{run_id}.{t}" for t in ("requests", "responses", "dlq")
    )
    k.create_topics(stack.bootstrap_servers, [requests_topic, responses_topic, dlq_topic], partitions=3)
    config_path = workdir / "worker.yaml"
    config = {
        "messaging": {
            "errorMaxBackoff": "30s",
            "streams": [
                {
                    "requestsURL": f"kafka://demo-{run_id}?topic={requests_topic}",
                    "responsesURL": f"kafka://{responses_topic}",
                    "dlqURL": f"kafka://{dlq_topic}",
                    "maxHandlers": 1000,
                }
            ],
        },
        "kafka": {"bootstrap.servers": stack.bootstrap_servers},
        "redis": {"url": stack.redis_url_with_password(), "resultTTL": "5m"},
        "providers": [{"name": "mock", "baseURL": stack.provider_url, "rpm": 6000}],
        "retry": {"maxAttempts": 4, "initialBackoff": "200ms"},
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    _say(f"\n== worker config ({config_path}) ==\n{yaml.safe_dump(config, sort_keys=False)}")

    metrics_port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KAFKA_", "REDIS_"))}
    worker = subprocess.Popen(
        [sys.executable, "-m", "kafka_llm.cli", "worker", "--config", str(config_path),
         "--metrics-port", str(metrics_port), "--stats-interval", "0"],
        env=env,
    )  # fmt: skip
    try:
        return _drive(stack, worker, metrics_port, run_id, requests_topic, responses_topic, dlq_topic)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        _say(f"\nworker exited with {worker.returncode} after draining")


def _drive(
    stack: StackInfo, worker: subprocess.Popen[bytes], metrics_port: int, run_id: str,
    requests_topic: str, responses_topic: str, dlq_topic: str,
) -> int:  # fmt: skip
    stats_url = f"http://127.0.0.1:{metrics_port}/stats"
    if not _wait_for(lambda: _get_json(stats_url) is not None and _get_json(stats_url)["assignment"], 60):
        _say("the worker did not join its consumer group in time")
        return 1
    requests = _requests(run_id)
    producer = k.producer(stack.bootstrap_servers)
    _say("== sending ==")
    for request_id, envelope, what in requests:
        envelope = {**envelope, "request_id": request_id}
        producer.produce(requests_topic, json.dumps(envelope).encode(), key=request_id)
        _say(f"  {request_id:<16} {what}")
    producer.produce(requests_topic, b"{this is not json", key=f"{run_id}-poison")
    _say(f"  {run_id + '-poison':<16} a poison record (not JSON)")
    bulk = [f"{run_id}-bulk-{i}" for i in range(200)]
    for request_id in bulk:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"prompt {request_id}"}]}
        producer.produce(
            requests_topic,
            json.dumps({"body": body, "path": "/v1/chat/completions", "request_id": request_id}).encode(),
            key=request_id,
        )
    _say(f"  ... and {len(bulk)} more chat completions")
    assert producer.flush(30_000) == []

    expected = {r[0] for r in requests} | {f"{run_id}-poison"} | set(bulk)
    reader = k.consumer(stack.bootstrap_servers, [responses_topic], f"demo-reader-{run_id}")
    finished: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        expected <= set(finished) and any(f.get("done") for f in finished.get(f"{run_id}-stream", []))
    ):
        for record in reader.consume(500, 200):
            key = record.key.decode() if record.key else ""
            finished.setdefault(key, []).append(json.loads(record.value))
    reader.close()

    _say("\n== responses ==")
    for request_id, _, _ in requests:
        frames = finished.get(request_id, [])
        if request_id.endswith("-stream"):
            tokens = "".join(
                f["chunk"]["choices"][0]["delta"].get("content", "")
                for f in frames
                if "chunk" in f and f["chunk"].get("choices")
            )
            final = next((f for f in frames if f.get("done")), {})
            _say(f"  {request_id:<16} {len(frames) - 1} token frames: {tokens!r}")
            _say(f"  {'':<16} final: status {final.get('status_code')} finish {final.get('finish_reason')}"
                 f" usage {final.get('usage')}")  # fmt: skip
            continue
        if not frames:
            _say(f"  {request_id:<16} (no response)")
            continue
        r = frames[0]
        body = r["body"]
        if r["status_code"] >= 400:
            summary = f"error: {body['error']['message'][:90]}"
        elif "data" in body:
            summary = f"embedding of {len(body['data'][0]['embedding'])} floats"
        else:
            choice = body["choices"][0]
            summary = repr((choice.get("message") or {}).get("content") or choice.get("text"))[:70]
        meta = f" metadata={r['metadata']}" if r["metadata"] else ""
        _say(f"  {request_id:<16} {r['status_code']} attempts={r['attempts']} "
             f"{r['latency_ms']:.0f} ms {summary}{meta}")  # fmt: skip
    poison = finished.get(f"{run_id}-poison", [{}])[0]
    poison_error = poison.get("body", {}).get("error", {}).get("message")
    _say(f"  {run_id + '-poison':<16} {poison.get('status_code')} {poison_error}")
    bulk_ok = sum(1 for i in bulk if finished.get(i, [{}])[0].get("status_code") == 200)
    _say(f"  bulk             {bulk_ok}/{len(bulk)} answered with 200")

    _say("\n== dead-letter topic ==")
    for record in k.consumer(stack.bootstrap_servers, [dlq_topic], f"demo-dlq-{run_id}").consume(2, 10_000):
        h = {name: value.decode() for name, value in record.headers}
        source = f"{h['x-source-topic']}[{h['x-source-partition']}]@{h['x-source-offset']}"
        _say(f"  key={record.key!r} class={h['x-error-class']} status={h['x-http-status']} "
             f"attempts={h['x-attempts']} from {source}")  # fmt: skip
        _say(f"    x-error: {h['x-error'][:100]}")

    _say("\n== Redis ==")
    import redis

    stored = redis.Redis.from_url(stack.redis_url_with_password(), decode_responses=True).get(
        f"kafka-llm:result:{run_id}-hello"
    )
    record = json.loads(stored) if stored else {}
    _say(
        f"  kafka-llm:result:{run_id}-hello -> status={record.get('status')} output={record.get('output')!r}"
    )

    stats = _get_json(stats_url) or {}
    e2e = stats.get("latency", {}).get("end_to_end", {})
    _say("\n== worker stats ==")
    _say(f"  requests by outcome: {stats.get('requests_by_outcome')}")
    _say(
        f"  retries: {stats.get('retries')}  dead letters: {stats.get('dlq')}  tokens: {stats.get('tokens')}"
    )
    _say(f"  end-to-end p50 {e2e.get('p50_ms', 0):.1f} ms, p95 {e2e.get('p95_ms', 0):.1f} ms, "
         f"p99 {e2e.get('p99_ms', 0):.1f} ms over {e2e.get('count')} requests")  # fmt: skip
    missing = expected - set(finished)
    if missing:
        _say(f"\nMISSING responses for {sorted(missing)[:5]}")
        return 1
    return 0


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    state_dir = cache_dir() / "dev" / "demo"
    _say(f"== starting the local stack ({state_dir}) ==")
    with Stack(state_dir, timeout=120, progress=lambda m: _say(f"  {m}")) as stack:
        info = stack.info
        _say(f"  kafka  {info.bootstrap_servers} (pid {info.pids.get('kafka')})")
        _say(f"  redis  {info.redis_url} (pid {info.pids.get('redis')})")
        _say(f"  mock   {info.provider_url} (pid {info.pids.get('provider')})")
        with tempfile.TemporaryDirectory(prefix="kafka-llm-demo-") as workdir:
            code = run(info, Path(workdir))
        _say("\n== stopping the local stack ==")
    return code


if __name__ == "__main__":
    sys.exit(main())
