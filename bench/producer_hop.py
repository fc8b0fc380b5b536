"""How long a record takes from ``produce()`` to a reader, for several producer settings, with the
core's own librdkafka client (the settings the native worker uses for its outputs are
``linger.ms=2`` and ``enable.idempotence=true``).

    python bench/producer_hop.py [--rate 100] [--count 500] [--repeats 3]

Starts a private stack, then for each setting produces ``count`` records of ~600 bytes paced at
``rate`` per second while a consumer (``fetch.wait.max.ms=10``) reads them, and prints p50/p95/p99
of (read time - the record's CreateTime). Settings are interleaved across repeats.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka_llm import kafka as k
from kafka_llm._paths import cache_dir
from kafka_llm.devstack import Stack
from kllm_bench.stats import median, percentile

SETTINGS: list[dict[str, str]] = [
    {"linger.ms": "0"},
    {"linger.ms": "0", "enable.idempotence": "true"},
    {"linger.ms": "2"},
    {"linger.ms": "2", "enable.idempotence": "true"},
    {"linger.ms": "5", "enable.idempotence": "true"},
]


def hop(bootstrap: str, props: dict[str, str], rate: float, count: int) -> list[float]:
    topic = f"hop-{secrets.token_hex(4)}"
    k.create_topics(bootstrap, [topic], partitions=3)
    consumer = k.consumer(bootstrap, [topic], f"{topic}.reader", properties={"fetch.wait.max.ms": "10"})
    while not consumer.assignment():
        consumer.poll(50)
    producer = k.producer(bootstrap, props)
    hops: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            record = consumer.poll(20)
            while record is not None:
                if isinstance(record, k.Record):  # else an error event librdkafka recovers from
                    hops.append(time.time() * 1000 - record.timestamp_ms)
                record = consumer.poll(0)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    value = b'{"status_code":200,"body":' + b"x" * 560 + b"}"
    start = time.monotonic()
    for i in range(count):
        ahead = start + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        producer.produce(topic, value, key=str(i))
    producer.flush(30_000)
    deadline = time.monotonic() + 10
    while len(hops) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    reader.join(5)
    consumer.close()
    return hops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float | None]]] = {json.dumps(s): [] for s in SETTINGS}
    with Stack(cache_dir() / "dev" / f"hop-{secrets.token_hex(3)}", partitions=3, timeout=180) as stack:
        bootstrap = stack.info.bootstrap_servers
        for _ in range(args.repeats):
            for setting in SETTINGS:
                hops = hop(bootstrap, setting, args.rate, args.count)
                row = {f"p{q}": percentile(hops, q) for q in (50, 95, 99)}
                results[json.dumps(setting)].append(row)
                print(
                    f"{json.dumps(setting):<48} " + "  ".join(f"{q} {v or 0:7.1f} ms" for q, v in row.items())
                )
    print(f"\nmedians over {args.repeats} repeats at {args.rate:g} records/s:")
    for setting, rows in results.items():
        print(
            f"{setting:<48} "
            + "  ".join(f"{q} {median([r[q] for r in rows]) or 0:7.1f} ms" for q in ("p50", "p95", "p99"))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
