"""kafka-llm: run LLM work off Kafka with a native core.

Import this package, never the private native module ``kafka_llm._core``.
"""

from __future__ import annotations

from kafka_llm import _core, _logging
from kafka_llm.config import Config, load_config
from kafka_llm.errors import ConfigError, KafkaError, KafkaLlmError, RedisError
from kafka_llm.pipeline import Pipeline

__version__: str = _core.__version__

# The core's log lines (and librdkafka's) go to logging.getLogger("kafka_llm.core").
_logging.start_forwarding()

__all__ = [
    "Config",
    "ConfigError",
    "KafkaError",
    "KafkaLlmError",
    "Pipeline",
    "RedisError",
    "__version__",
    "library_versions",
    "load_config",
]


def library_versions() -> str:
    """Versions of librdkafka, libcurl, hiredis and Boost the native core runs with."""
    return _core.library_versions()
