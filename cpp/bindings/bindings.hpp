#pragma once

#include <pybind11/pybind11.h>

namespace kafka_llm::bindings {

/// Each area registers its classes and functions on the `_core` module.
void register_errors(pybind11::module_& m);
void register_log(pybind11::module_& m);
void register_producer(pybind11::module_& m);
void register_consumer(pybind11::module_& m);
void register_admin(pybind11::module_& m);
void register_pipeline(pybind11::module_& m);

}  // namespace kafka_llm::bindings
