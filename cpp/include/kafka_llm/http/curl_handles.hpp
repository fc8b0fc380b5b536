#pragma once

#include <curl/curl.h>

#include <memory>

namespace kafka_llm::http {

// One RAII owner per libcurl C handle. Each deleter calls the matching cleanup function.

struct CurlEasyDeleter {
  void operator()(CURL* easy) const noexcept { curl_easy_cleanup(easy); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* multi) const noexcept { curl_multi_cleanup(multi); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};

using EasyHandle = std::unique_ptr<CURL, CurlEasyDeleter>;
using MultiHandle = std::unique_ptr<CURLM, CurlMultiDeleter>;
using SlistHandle = std::unique_ptr<curl_slist, CurlSlistDeleter>;

/// Runs curl_global_init once per process; safe to call from any thread. The matching
/// curl_global_cleanup is never called: other libraries in the process may use libcurl until exit.
/// Throws std::runtime_error when libcurl cannot be initialised.
void ensure_curl_global_init();

/// A new easy handle (after ensure_curl_global_init). Throws std::bad_alloc when curl cannot create one.
EasyHandle make_easy_handle();

/// A new multi handle (after ensure_curl_global_init). Throws std::bad_alloc when curl cannot create one.
MultiHandle make_multi_handle();

/// Appends a copy of `line` to `list` (creating the list when it is empty). Throws std::bad_alloc.
void append(SlistHandle& list, const char* line);

}  // namespace kafka_llm::http
