#include "kafka_llm/common/log.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace kafka_llm {

namespace {

// One mutex serializes both the swap and the calls, so a sink is never called after
// set_log_sink() has replaced it, and lines from several threads never interleave.
std::mutex& sink_mutex() {
  static std::mutex mutex;
  return mutex;
}

LogSink& current_sink() {
  static LogSink sink;
  return sink;
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

void set_log_sink(LogSink sink) {
  std::lock_guard lock(sink_mutex());
  current_sink() = std::move(sink);
}

void log(LogLevel level, std::string_view message) {
  std::lock_guard lock(sink_mutex());
  if (const LogSink& sink = current_sink()) {
    sink(level, message);
    return;
  }
  std::string line = "kafka-llm: ";
  line.append(to_string(level)).append(": ").append(message).push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kafka_llm
