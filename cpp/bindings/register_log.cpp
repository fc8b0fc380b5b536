#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "kafka_llm/common/log.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

using LogLine = std::pair<std::string, std::string>;  // (level name, message)

/// The core's log sink while Python forwards its lines to `logging`. The sink only queues (it runs
/// on native threads and must never wait for the GIL: a thread holding the GIL may be waiting for
/// that very native thread); a Python thread drains the queue with the GIL released.
class LogQueue {
 public:
  static constexpr std::size_t kCapacity = 10000;

  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
  }

  void push(LogLevel level, std::string_view message) {
    std::lock_guard lock(mutex_);
    if (lines_.size() >= kCapacity) {
      ++dropped_;
      return;
    }
    lines_.emplace_back(std::string(to_string(level)), std::string(message));
    if (lines_.size() == 1) ready_.notify_one();
  }

  /// Waits up to timeout_ms for lines; returns them (possibly none), or nullopt once closed and
  /// empty.
  std::optional<std::vector<LogLine>> drain(int timeout_ms) {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                    [this] { return !lines_.empty() || !open_; });
    if (lines_.empty() && dropped_ == 0 && !open_) return std::nullopt;
    std::vector<LogLine> out(std::make_move_iterator(lines_.begin()), std::make_move_iterator(lines_.end()));
    lines_.clear();
    if (dropped_ > 0) {
      out.emplace_back(std::string(to_string(LogLevel::kWarning)),
                       std::to_string(std::exchange(dropped_, 0)) +
                           " core log lines were dropped: the Python log forwarder fell behind");
    }
    return out;
  }

  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<LogLine> lines_;
  std::size_t dropped_ = 0;
  bool open_ = false;
};

// Never destroyed: native threads may log until the very end of the process.
LogQueue& log_queue() {
  static auto* queue = new LogQueue();
  return *queue;
}

}  // namespace

void register_log(py::module_& m) {
  m.def(
      "_forward_log",
      [] {
        log_queue().open();
        set_log_sink([](LogLevel level, std::string_view message) { log_queue().push(level, message); });
      },
      "Routes the core's log lines into a queue for _drain_log() (instead of stderr).");
  m.def(
      "_stop_log_forwarding",
      [] {
        set_log_sink({});  // back to stderr; returns only once no thread is inside the queue's sink
        log_queue().close();
      },
      py::call_guard<py::gil_scoped_release>(),
      "Restores the stderr sink; _drain_log() returns what is queued, then None.");
  m.def(
      "_drain_log", [](int timeout_ms) { return log_queue().drain(timeout_ms); }, py::arg("timeout_ms"),
      py::call_guard<py::gil_scoped_release>(),
      "(level, message) lines logged since the last call, waiting up to timeout_ms for one; None once "
      "forwarding stopped and every line was returned.");
}

}  // namespace kafka_llm::bindings
