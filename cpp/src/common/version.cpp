#include "kafka_llm/common/version.hpp"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include <boost/version.hpp>
#include <string>

namespace kafka_llm {

std::string_view version() noexcept {
  return KAFKA_LLM_VERSION;
}

std::string library_versions() {
  std::string out = "librdkafka ";
  out += rd_kafka_version_str();
  out += ", libcurl ";
  out += curl_version_info(CURLVERSION_NOW)->version;
  out += ", hiredis " + std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) + "." +
         std::to_string(HIREDIS_PATCH);
  out += ", boost " + std::to_string(BOOST_VERSION / 100000) + "." +
         std::to_string(BOOST_VERSION / 100 % 1000) + "." + std::to_string(BOOST_VERSION % 100);
  return out;
}

}  // namespace kafka_llm
