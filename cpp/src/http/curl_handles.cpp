#include "kafka_llm/http/curl_handles.hpp"

#include <new>
#include <stdexcept>
#include <string>

namespace kafka_llm::http {

void ensure_curl_global_init() {
  // A function-local static makes the one initialisation thread-safe; the code is kept so that a
  // failure is reported to every caller, not only the first.
  static const CURLcode result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (result != CURLE_OK) {
    throw std::runtime_error(std::string("curl_global_init failed: ") + curl_easy_strerror(result));
  }
}

EasyHandle make_easy_handle() {
  EasyHandle easy(curl_easy_init());
  if (!easy) throw std::bad_alloc();
  return easy;
}

MultiHandle make_multi_handle() {
  MultiHandle multi(curl_multi_init());
  if (!multi) throw std::bad_alloc();
  return multi;
}

void append(SlistHandle& list, const char* line) {
  curl_slist* head = curl_slist_append(list.get(), line);
  if (head == nullptr) throw std::bad_alloc();
  if (!list) list.reset(head);
}

}  // namespace kafka_llm::http
