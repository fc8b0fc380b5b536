"""The Kafka clients of ``kafka_llm.kafka``: context managers, error events from ``poll()``, fatal
errors, and the core's log lines (librdkafka's included) arriving in ``logging``."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from pipeline_helpers import wait_for

from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo
from kafka_llm.errors import KafkaError

# Nothing listens on port 1 of the loopback: a cluster that is down.
NO_BROKER = "127.0.0.1:1"
CORE_LOGGER = "kafka_llm.core"


def _poll_until(
    consumer: k.Consumer, accept: Callable[[k.Record | k.ErrorEvent], bool], timeout: float
) -> list:
    """Polls until a polled item is accepted; returns everything polled, the accepted item last."""
    seen: list[k.Record | k.ErrorEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = consumer.poll(100)
        if item is not None:
            seen.append(item)
            if accept(item):
                return seen
    raise AssertionError(f"nothing accepted in {timeout} s; polled {seen!r}")


def test_a_closed_client_raises_and_close_is_idempotent(stack: StackInfo, unique_name: str) -> None:
    k.create_topics(stack.bootstrap_servers, [unique_name], partitions=1)
    with k.producer(stack.bootstrap_servers) as producer:
        producer.produce(unique_name, b"v", track=True)
        assert producer.flush(10_000) == []
        [(_, partition, offset, error)] = producer.take_deliveries()
        assert (partition, offset, error) == (0, 0, None)
    with pytest.raises(KafkaError, match="the Kafka producer is closed"):
        producer.produce(unique_name, b"v")
    producer.close()

    with k.DeliveryProducer({"bootstrap.servers": stack.bootstrap_servers}) as delivery:
        delivery_id = delivery.produce(unique_name, b"w")
        assert delivery.flush(10_000) == [(delivery_id, None, "persisted")]
    with pytest.raises(KafkaError, match="the Kafka delivery producer is closed"):
        delivery.poll(0)
    with pytest.raises(KafkaError, match="the Kafka delivery producer is closed"):
        _ = delivery.outstanding

    with k.reader(stack.bootstrap_servers) as consumer:
        consumer.assign([(unique_name, 0, -2)])
        assert [r.value for r in consumer.consume(2, 10_000)] == [b"v", b"w"]
        assert consumer.position([(unique_name, 0)]) == [(unique_name, 0, 2)]
        assert consumer.query_watermark_offsets(unique_name, 0) == (0, 2)
    for call in (lambda: consumer.poll(0), consumer.assignment, lambda: consumer.consume(1, 0)):
        with pytest.raises(KafkaError, match="the Kafka consumer is closed"):
            call()
    consumer.close()

    with k.admin(stack.bootstrap_servers) as admin:
        assert admin.watermarks(unique_name, 0) == (0, 2)
    with pytest.raises(KafkaError, match="the admin client is closed"):
        admin.partition_count(unique_name)
    admin.close()


def test_poll_returns_error_events_and_records(stack: StackInfo, unique_name: str) -> None:
    k.create_topics(stack.bootstrap_servers, [unique_name], partitions=1)
    with k.reader(stack.bootstrap_servers, {"enable.partition.eof": "true"}) as consumer:
        consumer.assign([(unique_name, 0, -2)])
        [*_, end] = _poll_until(consumer, lambda item: isinstance(item, k.ErrorEvent), 30)
        assert isinstance(end, k.ErrorEvent)
        assert (end.name, end.topic, end.partition, end.offset) == ("_PARTITION_EOF", unique_name, 0, 0)
        assert end.code == -191  # RD_KAFKA_RESP_ERR__PARTITION_EOF
        assert "_PARTITION_EOF" in repr(end)
        with k.producer(stack.bootstrap_servers) as producer:
            producer.produce(unique_name, b"after the end", key=b"k")
            assert producer.flush(10_000) == []
        [*_, record] = _poll_until(consumer, lambda item: isinstance(item, k.Record), 30)
        assert isinstance(record, k.Record)
        assert (record.key, record.value, record.offset) == (b"k", b"after the end", 0)


def test_poll_returns_a_missing_topic_event(stack: StackInfo, unique_name: str) -> None:
    props = {"allow.auto.create.topics": "false"}
    with k.consumer(stack.bootstrap_servers, [unique_name], unique_name, properties=props) as consumer:
        [*_, event] = _poll_until(consumer, lambda item: isinstance(item, k.ErrorEvent), 30)
        assert isinstance(event, k.ErrorEvent)
        assert event.name == "UNKNOWN_TOPIC_OR_PART", event
        assert event.code == 3  # the broker's UNKNOWN_TOPIC_OR_PARTITION
        assert unique_name in event.reason


def test_consume_skips_and_logs_error_events(
    stack: StackInfo, unique_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=CORE_LOGGER)
    k.create_topics(stack.bootstrap_servers, [unique_name], partitions=1)
    with k.reader(stack.bootstrap_servers, {"enable.partition.eof": "true"}) as consumer:
        consumer.assign([(unique_name, 0, -2)])
        assert consumer.consume(1, 3_000) == []
        wait_for(
            lambda: any(
                r.name == CORE_LOGGER and r.levelno == logging.DEBUG and "consumer error" in r.getMessage()
                for r in caplog.records
            ),
            10,
            "consume() to log the partition end it skipped",
        )


def test_librdkafka_log_lines_arrive_in_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=CORE_LOGGER)
    with k.consumer(NO_BROKER, ["no-such-topic"], "kafka-bindings-log") as consumer:

        def logged() -> bool:
            consumer.poll(50)
            return any(
                r.name == CORE_LOGGER
                and r.levelno == logging.ERROR
                and r.getMessage().startswith("librdkafka rdkafka#consumer-")
                and NO_BROKER in r.getMessage()
                for r in caplog.records
            )

        wait_for(logged, 30, "librdkafka's broker-down line under kafka_llm.core")


def test_a_fenced_static_member_raises_a_fatal_kafka_error(stack: StackInfo, unique_name: str) -> None:
    k.create_topics(stack.bootstrap_servers, [unique_name], partitions=1)
    props = {"group.instance.id": "the-only-instance", "session.timeout.ms": "30000"}
    with k.consumer(stack.bootstrap_servers, [unique_name], unique_name, properties=props) as first:
        wait_for(lambda: first.poll(100) is not None or bool(first.assignment()), 30, "the first member")
        with k.consumer(stack.bootstrap_servers, [unique_name], unique_name, properties=props) as second:
            wait_for(
                lambda: second.poll(100) is not None or bool(second.assignment()), 30, "the second member"
            )
            with pytest.raises(KafkaError, match=r"failed fatally.*FENCED_INSTANCE_ID"):
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    first.poll(100)
                    second.poll(0)


def test_native_threads_logging_at_interpreter_exit_do_not_call_into_python() -> None:
    """A consumer left open at exit keeps logging from librdkafka's threads while the interpreter
    finalizes: the forwarding stops at exit (lines go to stderr again) and the process exits
    cleanly."""
    script = (
        "import time\n"
        "from kafka_llm import kafka as k\n"
        f"consumer = k.consumer({NO_BROKER!r}, ['no-such-topic'], 'kafka-bindings-exit')\n"
        "for _ in range(10):\n"
        "    consumer.poll(50)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    # No handler configured: logging's last-resort handler printed the forwarded error lines.
    assert "librdkafka rdkafka#consumer-1 FAIL" in done.stderr
