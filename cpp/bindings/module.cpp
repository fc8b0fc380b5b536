#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "kafka_llm/common/version.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "kafka-llm native core (private: import kafka_llm instead)";
  m.attr("__version__") = std::string(kafka_llm::version());
  m.def("library_versions", &kafka_llm::library_versions,
        "Versions of librdkafka, libcurl, hiredis and Boost the core runs with.");
  kafka_llm::bindings::register_errors(m);
  kafka_llm::bindings::register_log(m);
  kafka_llm::bindings::register_producer(m);
  kafka_llm::bindings::register_consumer(m);
  kafka_llm::bindings::register_admin(m);
  kafka_llm::bindings::register_pipeline(m);
}
