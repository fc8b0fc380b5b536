// Fuzz target: the request-envelope parser (docs/formats.md, "Request envelope"), the first code every
// untrusted Kafka record reaches. The input is one record value. Beyond "never crashes, never throws":
// - an accepted envelope has an accepted path that matches its endpoint, a non-empty model equal to
//   body.model, a non-empty request_id, a 64-hex-digit prompt hash, and serializes to JSON;
// - a poison record has a bounded, valid UTF-8 message, status 400 (413 only when oversized), a
//   non-empty request_id and a reply decision that follows the documented rule;
// - the key and the origin change only the request_id, never the verdict, and follow the documented
//   precedence (field, then a non-empty UTF-8 key, then `<topic>-<partition>-<offset>`);
// - a record over max_request_bytes is a 413 whatever it holds.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.hpp"
#include "kafka_llm/format/endpoint.hpp"
#include "kafka_llm/format/prompt_hash.hpp"
#include "kafka_llm/format/request_envelope.hpp"

namespace {

using kafka_llm::RecordOrigin;
using kafka_llm::fuzz::valid_utf8;
using nlohmann::json;
namespace format = kafka_llm::format;

// Poison messages go into the x-error DLQ header and the error response; the header promises
// "about 400 bytes".
constexpr std::size_t kMaxPoisonMessageBytes = 512;
constexpr std::size_t kKeyBytes = 8;

bool dumps_strictly(const json& value) {
  try {
    (void)value.dump();  // error_handler_t::strict: throws on invalid UTF-8
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void check_envelope(const format::RequestEnvelope& envelope, std::string_view value) {
  FUZZ_CHECK(std::find(format::kAcceptedRequestPaths.begin(), format::kAcceptedRequestPaths.end(),
                       envelope.path) != format::kAcceptedRequestPaths.end(),
             envelope.path);
  FUZZ_CHECK(envelope.path == format::endpoint_path(envelope.endpoint), envelope.path);
  FUZZ_CHECK(format::endpoint_from_path(envelope.path) == envelope.endpoint, envelope.path);
  FUZZ_CHECK(!envelope.request_id.empty(), value);
  FUZZ_CHECK(valid_utf8(envelope.request_id), envelope.request_id);
  FUZZ_CHECK(!envelope.model.empty(), value);
  FUZZ_CHECK(envelope.body.is_object(), value);
  FUZZ_CHECK(envelope.body.contains("model") && envelope.body["model"] == envelope.model, envelope.model);
  FUZZ_CHECK(!envelope.provider || !envelope.provider->empty(), value);
  const auto stream = envelope.body.find("stream");
  FUZZ_CHECK(envelope.stream == (stream != envelope.body.end() && *stream == true), value);
  // Strings shrink when unescaped; a token id costs at least "1," (2 bytes) and counts 4.
  FUZZ_CHECK(envelope.prompt_bytes <= 2 * value.size(), value);
  FUZZ_CHECK(envelope.prompt_hash.size() == 64 && is_lower_hex(envelope.prompt_hash), envelope.prompt_hash);
  FUZZ_CHECK(envelope.prompt_hash == format::prompt_hash(envelope.body), envelope.prompt_hash);
  FUZZ_CHECK(dumps_strictly(envelope.body), value);
  FUZZ_CHECK(dumps_strictly(envelope.metadata), value);
}

void check_poison(const format::PoisonRecord& poison, std::string_view value,
                  const format::RequestParseOptions& options) {
  FUZZ_CHECK(poison.error_class == kafka_llm::ErrorClass::kPoison, poison.message);
  FUZZ_CHECK(!poison.message.empty(), value);
  FUZZ_CHECK(poison.message.size() <= kMaxPoisonMessageBytes, poison.message);
  FUZZ_CHECK(valid_utf8(poison.message), poison.message);
  FUZZ_CHECK(poison.http_status == (value.size() > options.max_request_bytes ? 413 : 400), poison.message);
  FUZZ_CHECK(!poison.request_id.empty(), value);
  FUZZ_CHECK(valid_utf8(poison.request_id), poison.request_id);
  FUZZ_CHECK(!poison.model || valid_utf8(*poison.model), value);
  FUZZ_CHECK(!poison.provider || !poison.provider->empty(), value);
  const bool correlatable =
      poison.request_id_source != format::RequestIdSource::kOrigin || !poison.metadata.is_null();
  FUZZ_CHECK(poison.reply == (correlatable ? format::ErrorReply::kSend : format::ErrorReply::kDeadLetterOnly),
             poison.message);
  FUZZ_CHECK(dumps_strictly(poison.metadata), value);
}

// (request_id, source) of either outcome.
std::pair<std::string, format::RequestIdSource> identity(const format::ParseRequestResult& result) {
  if (const auto* envelope = std::get_if<format::RequestEnvelope>(&result)) {
    return {envelope->request_id, envelope->request_id_source};
  }
  const auto& poison = std::get<format::PoisonRecord>(result);
  return {poison.request_id, poison.request_id_source};
}

void check(const format::ParseRequestResult& result, std::string_view value,
           const format::RequestParseOptions& options) {
  if (const auto* envelope = std::get_if<format::RequestEnvelope>(&result)) {
    FUZZ_CHECK(value.size() <= options.max_request_bytes, value);
    check_envelope(*envelope, value);
  } else {
    check_poison(std::get<format::PoisonRecord>(result), value, options);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);

  const format::RequestParseOptions defaults;
  const auto plain = format::parse_request(value);
  check(plain, value, defaults);
  const auto [plain_id, plain_source] = identity(plain);
  FUZZ_CHECK(plain_source != format::RequestIdSource::kKey, plain_id);
  if (plain_source == format::RequestIdSource::kOrigin) {
    FUZZ_CHECK(plain_id == format::origin_request_id(RecordOrigin{}), plain_id);
  }

  // The same record with a key (the first bytes, often not UTF-8) and an origin.
  const std::string_view key = value.substr(0, std::min(value.size(), kKeyBytes));
  const RecordOrigin origin{"fuzz.requests", 3, 42};
  const auto keyed = format::parse_request(value, key, origin);
  check(keyed, value, defaults);
  FUZZ_CHECK(keyed.index() == plain.index(), value);
  const auto [keyed_id, keyed_source] = identity(keyed);
  if (plain_source == format::RequestIdSource::kField) {
    FUZZ_CHECK(keyed_source == format::RequestIdSource::kField && keyed_id == plain_id, keyed_id);
  } else if (!key.empty() && valid_utf8(key)) {
    FUZZ_CHECK(keyed_source == format::RequestIdSource::kKey && keyed_id == key, keyed_id);
  } else {
    FUZZ_CHECK(keyed_source == format::RequestIdSource::kOrigin && keyed_id == "fuzz.requests-3-42",
               keyed_id);
  }
  if (const auto* a = std::get_if<format::RequestEnvelope>(&plain)) {
    const auto& b = std::get<format::RequestEnvelope>(keyed);
    FUZZ_CHECK(a->body == b.body && a->metadata == b.metadata && a->prompt_hash == b.prompt_hash &&
                   a->prompt_bytes == b.prompt_bytes && a->endpoint == b.endpoint && a->model == b.model &&
                   a->provider == b.provider && a->stream == b.stream,
               value);
  } else {
    FUZZ_CHECK(std::get<format::PoisonRecord>(plain).message == std::get<format::PoisonRecord>(keyed).message,
               value);
  }

  // Oversized: always a 413, whatever the bytes.
  if (!value.empty()) {
    format::RequestParseOptions small;
    small.max_request_bytes = value.size() - 1;
    const auto oversized = format::parse_request(value, small);
    FUZZ_CHECK(std::holds_alternative<format::PoisonRecord>(oversized), value);
    check(oversized, value, small);
  }
  return 0;
}
