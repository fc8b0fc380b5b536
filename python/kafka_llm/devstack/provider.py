"""The mock LLM provider: the native ``kafka-llm-mock-provider`` (OpenAI-compatible HTTP)."""

from __future__ import annotations

from kafka_llm._paths import native_tool
from kafka_llm.devstack._part import DevStackError, Part, Progress
from kafka_llm.devstack._process import LOOPBACK
from kafka_llm.devstack.probes import ProbeResult, probe_http_health

BINARY = "kafka-llm-mock-provider"


def provider_executable() -> str:
    """Path of the native mock provider. Raises DevStackError naming where it was looked for."""
    try:
        return str(native_tool(BINARY))
    except FileNotFoundError as exc:
        raise DevStackError(str(exc)) from None


class ProviderPart(Part):
    """Started as ``kafka-llm-mock-provider --host 127.0.0.1 --port N <provider args>``."""

    name = "provider"
    ready_timeout = 10.0
    stop_timeout = 10.0

    def ports(self) -> dict[str, int]:
        return {"port": self.settings.provider_port}

    def prepare(self, progress: Progress) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        return [
            provider_executable(),
            "--host",
            LOOPBACK,
            "--port",
            str(self.settings.provider_port),
            *self.settings.provider_args,
        ]

    def marker(self) -> str:
        return BINARY

    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.provider_port}/v1"

    def probe(self, timeout: float) -> ProbeResult:
        return probe_http_health(LOOPBACK, self.settings.provider_port, timeout=timeout)
