"""Small in-flight windows: time to answer 1,000 requests (48 ms fixed mock latency, 3 partitions)
with maxHandlers 24, 50 and 400, against the ideal n * latency / maxHandlers. Shows the cost of
pausing and resuming consumption (librdkafka drops prefetched records of paused partitions and the
re-fetch may wait behind a long-poll fetch). The time includes joining the consumer group (~1 s).

    .venv/bin/python bench/small_window.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from pipeline_helpers import Collector, envelope, make_config, make_topics, produce

from kafka_llm import Pipeline
from kafka_llm.devstack import Stack

REQUESTS = 1000
LATENCY_S = 0.048


def main() -> None:
    stack_handle = Stack(Path(tempfile.mkdtemp(prefix="kafka-llm-small-window-")), timeout=120)
    stack_handle.start()
    try:
        stack = stack_handle.info
        for window in (24, 50, 400):
            name = f"small-window-{window}-{time.time_ns() % 1_000_000}"
            topics = make_topics(stack, name, partitions=3)
            body = {"mock": {"latency_ms": LATENCY_S * 1000}}
            values = [
                json.dumps(envelope(f"{name}-{i}", request_id=f"{name}-{i}", body_extra=body)).encode()
                for i in range(REQUESTS)
            ]
            produce(stack, topics.requests, values, spread_over=3)
            responses = Collector(stack, topics.responses)
            started = time.monotonic()
            with Pipeline(make_config(stack, topics, max_handlers=window)):
                responses.poll_until(lambda c: len(c.ids()) >= REQUESTS, 120, "every response")
                elapsed = time.monotonic() - started
            responses.close()
            ideal = REQUESTS * LATENCY_S / window
            print(f"maxHandlers {window:4d}: {elapsed:6.2f} s (ideal {ideal:.2f} s + group join)", flush=True)
    finally:
        stack_handle.stop()


if __name__ == "__main__":
    main()
