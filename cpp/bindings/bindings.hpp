#pragma once

#include <pybind11/pybind11.h>

namespace kafka_llm::bindings {

/// Each area registers its classes and functions on the `_core` module.
void register_errors(pybind11::module_& m);
void register_kafka(pybind11::module_& m);
void register_pipeline(pybind11::module_& m);

}  // namespace kafka_llm::bindings
