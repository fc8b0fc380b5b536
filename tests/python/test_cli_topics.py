"""``kafka-llm topics create|list`` against the real broker: every topic a configuration names is
created once, existing ones are reported (``--if-not-exists``) or refused, and the README's
``kafka-llm topics`` lines run as written (issue 20, point 5)."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import run_cli

from kafka_llm import kafka as k
from kafka_llm.devstack import StackInfo

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]


def _config(stack: StackInfo, tmp_path: Path, name: str) -> tuple[Path, dict[str, str]]:
    """Two streams: the first with a control and a review topic, the second sharing its response
    topic. Returns the file and the topics by expected role."""
    topics = {
        "stream 0 requests": f"{name}-req",
        "stream 0 responses": f"{name}-resp",
        "stream 0 dead letters": f"{name}-dlq",
        "stream 0 cancellations": f"{name}-cancel",
        "stream 0 human review": f"{name}-review",
        "stream 1 requests": f"{name}-req2",
        "stream 1 dead letters": f"{name}-req2.dlq",  # the default dlqURL
    }
    document: dict[str, Any] = {
        "messaging": {
            "streams": [
                {
                    "requestsURL": f"kafka://{name}-g?topic={name}-req",
                    "responsesURL": f"kafka://{name}-resp",
                    "dlqURL": f"kafka://{name}-dlq",
                    "cancelURL": f"kafka://{name}-cancel",
                    "humanReview": {"topic": f"{name}-review", "sampleRate": 0.1},
                },
                {
                    "requestsURL": f"kafka://{name}-g2?topic={name}-req2",
                    "responsesURL": f"kafka://{name}-resp",
                },
            ]
        },
        "kafka": {"bootstrap.servers": stack.bootstrap_servers},
        "providers": [{"name": "mock", "baseURL": stack.provider_url}],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, topics


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {row["topic"]: row for row in map(json.loads, stdout.splitlines())}


def test_create_makes_every_topic_once(stack: StackInfo, tmp_path: Path, unique_name: str) -> None:
    config, topics = _config(stack, tmp_path, unique_name)
    listed = run_cli("topics", "list", "--config", str(config), "--json")
    assert listed.returncode == 1, listed.stderr  # all missing
    statuses = {t: r["status"] for t, r in _rows(listed.stdout).items()}
    assert statuses == dict.fromkeys(topics.values(), "missing")

    created = run_cli("topics", "create", "--config", str(config), "--partitions", "2", "--json")
    assert created.returncode == 0, created.stderr
    rows = _rows(created.stdout)
    assert {r["role"]: t for t, r in rows.items()} == topics
    assert all(r["status"] == "created" and r["partitions"] == 2 for r in rows.values())
    for topic in topics.values():
        assert k.partition_count(stack.bootstrap_servers, topic) == 2, topic
    assert "7 created, 0 existed already" in created.stderr

    # Again: refused without --if-not-exists, reported with it.
    again = run_cli("topics", "create", "--config", str(config))
    assert again.returncode == 1
    assert "already exist" in again.stderr and f"{unique_name}-req" in again.stderr
    idempotent = run_cli("topics", "create", "--config", str(config), "--if-not-exists", "--json")
    assert idempotent.returncode == 0, idempotent.stderr
    assert all(r["status"] == "exists" for r in _rows(idempotent.stdout).values())
    table = run_cli("topics", "list", "--config", str(config))
    assert table.returncode == 0, table.stderr
    assert table.stdout.split()[:4] == ["topic", "role", "partitions", "status"]
    assert table.stdout.count(" exists") == len(topics)


def test_existing_topics_keep_their_partitions(stack: StackInfo, tmp_path: Path, unique_name: str) -> None:
    config, _ = _config(stack, tmp_path, unique_name)
    k.create_topics(stack.bootstrap_servers, [f"{unique_name}-resp"], partitions=1)
    result = run_cli("topics", "create", "--config", str(config), "--if-not-exists", "--json")
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows[f"{unique_name}-resp"] == {
        "topic": f"{unique_name}-resp",
        "role": "stream 0 responses",
        "partitions": 1,
        "status": "exists",
    }
    assert rows[f"{unique_name}-req"]["status"] == "created"
    assert k.partition_count(stack.bootstrap_servers, f"{unique_name}-req") == 3  # the default


def test_replication_factor_reaches_the_broker(stack: StackInfo, tmp_path: Path, unique_name: str) -> None:
    config, topics = _config(stack, tmp_path, unique_name)
    # The local broker is one node: two replicas are impossible, and the broker says so.
    result = run_cli("topics", "create", "--config", str(config), "--replication-factor", "2")
    assert result.returncode == 1
    assert "kafka-llm topics create: error:" in result.stderr
    assert "replication factor" in result.stderr.lower()
    assert k.partition_count(stack.bootstrap_servers, topics["stream 0 requests"]) == -1
    bad = run_cli("topics", "create", "--config", str(config), "--replication-factor", "0")
    assert bad.returncode == 2 and "--replication-factor" in bad.stderr
    # Without --config, the environment alone must configure a worker; this one does not.
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_LLM_", "KAFKA_BOOTSTRAP"))}
    no_config = run_cli("topics", "list", "--bootstrap-servers", stack.bootstrap_servers, env=bare)
    assert no_config.returncode == 2 and "--config: is required" in no_config.stderr


def test_readme_topics_commands_run_as_written(stack: StackInfo, tmp_path: Path, unique_name: str) -> None:
    config, topics = _config(stack, tmp_path, unique_name)
    lines = [
        line.strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if line.strip().startswith("kafka-llm topics ") and "--config worker.yaml" in line
    ]
    assert [line.split()[2] for line in lines] == ["create", "list"], lines
    for line in lines:
        # Optional parts ([--replication-factor 3]) are left out: the local broker has one node.
        args = shlex.split(re.sub(r"\[[^]]*\]", "", line))[1:]
        args = [str(config) if a == "worker.yaml" else a for a in args]
        result = run_cli(*args)
        assert result.returncode == 0, (line, result.stderr)
    for topic in topics.values():
        assert k.partition_count(stack.bootstrap_servers, topic) == 6, topic
