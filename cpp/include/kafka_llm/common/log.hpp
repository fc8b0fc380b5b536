#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace kafka_llm {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning, kError };

/// "debug", "info", "warning" or "error".
std::string_view to_string(LogLevel level) noexcept;

/// Receives every log line of the core. Called from any of the core's threads (the pipeline's io
/// thread, librdkafka's threads, the embedded-provider pool), one call at a time; it must not call
/// back into the core. Messages are already scrubbed of secrets.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

/// Replaces the process-wide sink; an empty sink restores the default, which writes
/// `kafka-llm: <level>: <message>` lines to stderr. Thread-safe.
void set_log_sink(LogSink sink);

/// Logs one message through the current sink. Thread-safe.
void log(LogLevel level, std::string_view message);

}  // namespace kafka_llm
