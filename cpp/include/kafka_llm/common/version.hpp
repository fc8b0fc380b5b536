#pragma once

#include <string_view>

namespace kafka_llm {

/// The package version, as set by the build (`project(VERSION)` in CMakeLists.txt).
std::string_view version() noexcept;

/// Versions of the native libraries the core was built against and runs with,
/// e.g. "librdkafka 2.0.2, libcurl 7.88.1, hiredis 0.14.1, boost 1.81.0".
std::string library_versions();

}  // namespace kafka_llm
