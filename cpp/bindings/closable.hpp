#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::bindings {

/// The Python face of a core client: close() destroys the client (idempotent) and every later
/// call throws KafkaError("<name> is closed"). Calls may run on several Python threads with the GIL
/// released: close() waits until the calls in progress have returned. Take the GIL off before
/// use() or close() of a client whose calls block, never while holding a lock the client's
/// callbacks need.
template <class Client>
class Closable {
 public:
  Closable(std::unique_ptr<Client> client, std::string name)
      : client_(std::move(client)), name_(std::move(name)) {}

  /// Returns fn(client), holding off close() meanwhile. Throws KafkaError once closed.
  template <class Fn>
  decltype(auto) use(Fn&& fn) {
    std::shared_lock lock(mutex_);
    if (!client_) throw KafkaError(name_ + " is closed");
    return std::forward<Fn>(fn)(*client_);
  }

  /// Destroys the client (after the calls in progress); does nothing when already closed.
  void close() {
    std::unique_ptr<Client> closing;
    {
      std::unique_lock lock(mutex_);
      closing = std::move(client_);
    }
    // Destroyed here, outside the lock: a call racing with close() is told "closed" at once.
  }

 private:
  std::shared_mutex mutex_;
  std::unique_ptr<Client> client_;
  std::string name_;
};

/// Binds close() (with `close_doc`), __enter__ (returns the handle) and __exit__ (closes), each
/// with the GIL released while the client is destroyed.
template <class Handle>
void bind_close(pybind11::class_<Handle>& cls, const char* close_doc) {
  cls.def("close", &Handle::close, pybind11::call_guard<pybind11::gil_scoped_release>(), close_doc)
      .def("__enter__", [](Handle& handle) -> Handle& { return handle; })
      .def("__exit__", [](Handle& handle, const pybind11::args&) {
        pybind11::gil_scoped_release release;
        handle.close();
      });
}

}  // namespace kafka_llm::bindings
