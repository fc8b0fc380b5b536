"""Every worker configuration in examples/ loads with ``kafka_llm.load_config`` (the environment
variables it names set to dummy values), and examples/README.md lists each file there: none rots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from kafka_llm import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOT_WORKER_CONFIGS = {"keda-scaledobject.yaml"}
DUMMY_ENV = {"OPENAI_API_KEY": "sk-dummy", "GROQ_API_KEY": "gsk-dummy", "ANTHROPIC_API_KEY": "sk-ant-dummy"}
CONFIGS = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name not in NOT_WORKER_CONFIGS)
EXPECTED = {
    "anthropic.yaml",
    "groq.yaml",
    "kubeai-messaging.yaml",
    "openai.yaml",
    "sasl-ssl.yaml",
    "vllm-sidecar.yaml",
}


def test_the_examples_are_all_there_and_listed() -> None:
    assert set(CONFIGS) == EXPECTED
    listed = (EXAMPLES / "README.md").read_text()
    for name in [*CONFIGS, *NOT_WORKER_CONFIGS]:
        assert f"]({name})" in listed, name


SECRETS = "/var/run/secrets/"


def _load(name: str, secrets: Path) -> Any:
    """The example, its mounted secret files (``/var/run/secrets/...``) made under ``secrets``."""
    text = (EXAMPLES / name).read_text()
    if SECRETS not in text:
        return load_config(EXAMPLES / name, env=DUMMY_ENV)
    for path in re.findall(re.escape(SECRETS) + r"[\w./-]+", text):
        file = secrets / path.removeprefix(SECRETS)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"dummy-{file.name}\n")
    copy = secrets / name
    copy.write_text(text.replace(SECRETS, f"{secrets}/"))
    return load_config(copy, env={})


@pytest.mark.parametrize("name", CONFIGS)
def test_example_loads(name: str, tmp_path: Path) -> None:
    config = _load(name, tmp_path)
    assert config.providers and config.streams
    assert config.kafka["bootstrap.servers"]


def test_the_examples_say_what_they_show(tmp_path: Path) -> None:
    vllm = load_config(EXAMPLES / "vllm-sidecar.yaml", env=DUMMY_ENV)
    assert vllm.providers[0].unix_socket == "/run/vllm/vllm.sock"
    sasl = _load("sasl-ssl.yaml", tmp_path)
    assert sasl.kafka["security.protocol"] == "SASL_SSL"
    assert sasl.kafka["sasl.password"] == "dummy-password"  # read from the mounted file
    assert sasl.providers[0].api_key == "dummy-api-key" and ":dummy-password@" in sasl.redis_url
    assert load_config(EXAMPLES / "anthropic.yaml", env=DUMMY_ENV).providers[0].kind == "anthropic"
    kubeai = load_config(EXAMPLES / "kubeai-messaging.yaml", env=DUMMY_ENV)
    assert [(s.group, s.requests_topic) for s in kubeai.streams] == [
        ("kubeai-group", "kubeai-requests"),
        ("kubeai-batch", "kubeai-batch-requests"),
    ]
