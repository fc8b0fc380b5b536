"""OpenAI Batch JSONL in and out through Kafka (``kafka-llm batch``; ``docs/operations.md``,
"Replay, dead letters and batch").

The input is OpenAI's batch file: one request per line,
``{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`` with
``url`` one of ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``. Every line is
checked before anything is produced; a bad file raises BatchInputError naming each bad line.

Each request becomes a request envelope (``docs/formats.md``, "Request envelope") on the stream's
request topic, keyed by its request id ``<batch id>:<custom id>`` (so re-running a batch with the
same ``batch_id`` re-publishes the results that are still ``done`` instead of calling the provider
again). The responses are read from the stream's response topic, and the output file gets one line
per input line, in input order, as OpenAI writes them::

    {"id": "batch_req_...", "custom_id": "...",
     "response": {"status_code": 200, "request_id": "...", "body": {...}}, "error": null}

A request the provider (or the worker) answered with an error keeps ``error: null`` and carries
the status code and error body in ``response``, as in OpenAI's batch output. A request with no
response before the timeout gets ``response: null`` and
``error: {"code": "batch_expired", "message": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kafka_llm import kafka as k
from kafka_llm.config import Config, load_config
from kafka_llm.errors import KafkaError, KafkaLlmError
from kafka_llm.pipeline import Pipeline

__all__ = ["ENDPOINTS", "BatchInputError", "BatchReport", "BatchRequest", "read_batch_input", "run_batch"]

#: The endpoints a batch line may name in ``url``.
ENDPOINTS: tuple[str, ...] = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")

_KEYS = ("custom_id", "method", "url", "body")
_MAX_ERRORS_SHOWN = 20
_EXPIRED_CODE = "batch_expired"


class BatchInputError(KafkaLlmError, ValueError):
    """The batch input file is invalid; ``errors`` lists (line number, problem) for each bad line."""

    def __init__(self, message: str, errors: list[tuple[int, str]]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class BatchRequest:
    """One valid input line."""

    line: int
    custom_id: str
    url: str
    body: Mapping[str, Any]
    request_id: str

    @property
    def output_id(self) -> str:
        """The output line's ``id``: ``batch_req_`` and a digest of the request id."""
        return "batch_req_" + hashlib.sha256(self.request_id.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BatchReport:
    """What a batch run did. ``completed``: answered with a status below 400; ``failed``: answered
    with an error status; ``expired``: no answer before the timeout."""

    batch_id: str
    input_path: Path
    output_path: Path
    total: int
    completed: int
    failed: int
    expired: int
    elapsed_s: float


def _check_line(number: int, text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        item = json.loads(text)
    except ValueError as e:
        return None, f"not valid JSON: {e}"
    if not isinstance(item, dict):
        return None, f"must be a JSON object, got {type(item).__name__}"
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        return None, f"unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})"
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return None, "custom_id: is required and must be a non-empty string"
    method = item.get("method")
    if method != "POST":
        return None, f"method: must be POST, got {method!r}"
    url = item.get("url")
    if url not in ENDPOINTS:
        return None, f"url: must be one of {', '.join(ENDPOINTS)}, got {url!r}"
    body = item.get("body")
    if not isinstance(body, dict):
        return None, "body: is required and must be a JSON object"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return None, "body.model: is required and must be a non-empty string"
    if body.get("stream"):
        return None, "body.stream: streaming is not supported in a batch"
    return item, None


def read_batch_input(path: str | Path, batch_id: str) -> list[BatchRequest]:
    """Reads and checks a batch file. Blank lines are skipped. Raises BatchInputError naming every
    bad line (bad JSON, missing or wrong fields, an unsupported url, a duplicate custom_id), and
    OSError when the file cannot be read."""
    source = Path(path)
    raw = source.read_bytes()
    requests: list[BatchRequest] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            errors.append((number, f"not valid UTF-8 (byte {e.start})"))
            continue
        item, problem = _check_line(number, text)
        if item is None:
            errors.append((number, str(problem)))
            continue
        custom_id = str(item["custom_id"])
        if custom_id in seen:
            errors.append((number, f"custom_id {custom_id!r} is already used on line {seen[custom_id]}"))
            continue
        seen[custom_id] = number
        requests.append(
            BatchRequest(number, custom_id, str(item["url"]), item["body"], f"{batch_id}:{custom_id}")
        )
    if errors:
        shown = "\n".join(f"  line {n}: {problem}" for n, problem in errors[:_MAX_ERRORS_SHOWN])
        more = (
            f"\n  ... and {len(errors) - _MAX_ERRORS_SHOWN} more" if len(errors) > _MAX_ERRORS_SHOWN else ""
        )
        raise BatchInputError(
            f"{source}: {len(errors)} invalid line(s), nothing was sent:\n{shown}{more}", errors
        )
    if not requests:
        raise BatchInputError(f"{source}: has no requests", [])
    return requests


class _Progress:
    """A one-line progress bar on stderr (redrawn in place on a terminal, a line every few seconds
    otherwise)."""

    _WIDTH = 24
    _TTY_INTERVAL_S = 0.2
    _LOG_INTERVAL_S = 5.0

    def __init__(self, total: int, enabled: bool, out: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int, failed: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < (self._TTY_INTERVAL_S if self.tty else self._LOG_INTERVAL_S):
            return
        self.last = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        filled = self._WIDTH * done // self.total if self.total else self._WIDTH
        eta = f"{(self.total - done) / rate:.0f}s" if rate > 0 and done < self.total else "-"
        text = (
            f"batch [{'#' * filled}{'.' * (self._WIDTH - filled)}] {done}/{self.total} "
            f"{100 * done // max(1, self.total)}% {rate:.1f}/s eta {eta} errors {failed}"
        )
        if self.tty:
            self.out.write("\r" + text + "\x1b[K")
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def finish(self, done: int, failed: int) -> None:
        self.update(done, failed, force=True)
        if self.enabled and self.tty:
            self.out.write("\n")
            self.out.flush()


def _output_line(
    request: BatchRequest, response: Mapping[str, Any] | None, expired_message: str
) -> dict[str, Any]:
    if response is None:
        return {
            "id": request.output_id,
            "custom_id": request.custom_id,
            "response": None,
            "error": {"code": _EXPIRED_CODE, "message": expired_message},
        }
    return {
        "id": request.output_id,
        "custom_id": request.custom_id,
        "response": {
            "status_code": response.get("status_code"),
            "request_id": request.request_id,
            "body": response.get("body"),
        },
        "error": None,
    }


def _response_reader(admin: k.AdminClient, config: Config, topic: str, timeout_ms: int) -> k.Consumer:
    """A consumer assigned to every partition of ``topic`` at its current end, so it sees every
    response produced from now on."""
    count = admin.partition_count(topic, timeout_ms)
    if count <= 0:
        raise KafkaError(f"response topic {topic!r} does not exist")
    consumer = k.reader(config.bootstrap_servers, config.kafka)
    consumer.assign([(topic, p, admin.watermarks(topic, p, timeout_ms)[1]) for p in range(count)])
    return consumer


def run_batch(
    config: Config | str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    stream: int = 0,
    progress: bool = True,
    timeout: float | None = None,
    with_worker: bool = False,
    batch_id: str | None = None,
) -> BatchReport:
    """Runs an OpenAI Batch JSONL file through the pipeline and writes OpenAI Batch output lines,
    in input order, to ``output_path`` (see the module doc for both formats).

    ``config`` (a Config or a YAML path) names the Kafka cluster and the stream (``stream``-th of
    ``messaging.streams``) whose request topic gets the requests and whose response topic is read.
    Workers of that stream must be running, or pass ``with_worker`` to run a ``Pipeline`` in this
    process for the duration. ``timeout`` (seconds; None waits as long as it takes) bounds the wait
    for responses; requests without one are written as ``batch_expired`` errors. ``batch_id`` (default:
    a new ``batch_<hex>``) prefixes every request id; re-running with the same id re-publishes stored
    results. ``progress`` draws a progress bar on stderr.

    Raises BatchInputError for an invalid input file (nothing is produced then), ValueError for bad
    arguments, KafkaError when a topic is missing or producing fails.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    if not 0 <= stream < len(cfg.streams):
        raise ValueError(f"stream: the configuration has {len(cfg.streams)} stream(s), not index {stream}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout: must be positive, got {timeout}")
    spec = cfg.streams[stream]
    batch_id = batch_id or f"batch_{uuid.uuid4().hex[:24]}"
    requests = read_batch_input(input_path, batch_id)
    output = Path(output_path)
    started = time.monotonic()
    timeout_ms = 30_000

    worker = Pipeline(cfg).start() if with_worker else None
    try:
        with k.admin(cfg.bootstrap_servers, cfg.kafka) as admin:
            if admin.partition_count(spec.requests_topic, timeout_ms) <= 0:
                raise KafkaError(f"request topic {spec.requests_topic!r} does not exist")
            reader = _response_reader(admin, cfg, spec.responses_topic, timeout_ms)
        try:
            responses = _send_and_collect(
                reader, cfg, spec.requests_topic, requests, progress, timeout, batch_id
            )
        finally:
            reader.close()
    finally:
        if worker is not None:
            worker.stop()

    expired_message = (
        f"This request could not be executed before the batch timeout ({timeout:g} s) expired."
        if timeout is not None
        else "This request was not answered."
    )
    completed = failed = expired = 0
    temporary = output.with_name(output.name + ".partial")
    with temporary.open("w", encoding="utf-8") as out:
        for request in requests:
            response = responses.get(request.request_id)
            if response is None:
                expired += 1
            elif int(response.get("status_code") or 500) < 400:
                completed += 1
            else:
                failed += 1
            out.write(json.dumps(_output_line(request, response, expired_message), ensure_ascii=False) + "\n")
    os.replace(temporary, output)
    return BatchReport(
        batch_id=batch_id,
        input_path=Path(input_path),
        output_path=output,
        total=len(requests),
        completed=completed,
        failed=failed,
        expired=expired,
        elapsed_s=time.monotonic() - started,
    )


def _send_and_collect(
    reader: k.Consumer,
    config: Config,
    topic: str,
    requests: list[BatchRequest],
    progress: bool,
    timeout: float | None,
    batch_id: str,
) -> dict[str, dict[str, Any]]:
    producer = k.producer(config.bootstrap_servers, config.kafka)
    for request in requests:
        envelope = {
            "metadata": {"batch_id": batch_id, "custom_id": request.custom_id},
            "path": request.url,
            "body": request.body,
            "request_id": request.request_id,
        }
        producer.produce(topic, json.dumps(envelope).encode(), key=request.request_id)
    failures = producer.flush(30_000)
    if failures:
        raise KafkaError(
            f"producing {len(failures)} of {len(requests)} request(s) to {topic!r} failed: {failures[0]}"
        )

    waiting = {r.request_id for r in requests}
    responses: dict[str, dict[str, Any]] = {}
    errors = 0
    bar = _Progress(len(requests), progress)
    bar.update(0, 0, force=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    while waiting and (deadline is None or time.monotonic() < deadline):
        for record in reader.consume(max(1, len(waiting)), 200):
            if record.key is None:
                continue
            request_id = record.key.decode("utf-8", errors="replace")
            if request_id not in waiting:
                continue
            try:
                message = json.loads(record.value)
            except ValueError:
                continue
            if not isinstance(message, dict) or "status_code" not in message or "seq" in message:
                continue  # not a response envelope (e.g. a token frame)
            waiting.discard(request_id)
            responses[request_id] = message
            if int(message.get("status_code") or 500) >= 400:
                errors += 1
        bar.update(len(responses), errors)
    bar.finish(len(responses), errors)
    return responses
