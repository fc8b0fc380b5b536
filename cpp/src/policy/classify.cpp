#include "kafka_llm/policy/classify.hpp"

#include <array>
#include <cstddef>

namespace kafka_llm::policy {

namespace {

constexpr int kFirstStatus = 100;
constexpr int kLastStatus = 599;
constexpr std::size_t kStatusLabelSize = 8;  // "http_" + three digits

struct StatusLabels {
  std::array<std::array<char, kStatusLabelSize>, kLastStatus - kFirstStatus + 1> text{};
};

constexpr StatusLabels make_status_labels() {
  StatusLabels labels;
  for (int status = kFirstStatus; status <= kLastStatus; ++status) {
    auto& label = labels.text[static_cast<std::size_t>(status - kFirstStatus)];
    const std::string_view prefix = "http_";
    for (std::size_t i = 0; i < prefix.size(); ++i) label[i] = prefix[i];
    label[5] = static_cast<char>('0' + status / 100);
    label[6] = static_cast<char>('0' + status / 10 % 10);
    label[7] = static_cast<char>('0' + status % 10);
  }
  return labels;
}

constexpr StatusLabels kStatusLabels = make_status_labels();

std::string_view status_label(int status) noexcept {
  if (status < kFirstStatus || status > kLastStatus) return "http_invalid";
  const auto& label = kStatusLabels.text[static_cast<std::size_t>(status - kFirstStatus)];
  return {label.data(), label.size()};
}

bool is_retryable_status(int status) noexcept {
  switch (status) {
    case 408:
    case 425:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
      return true;
    default:
      return false;
  }
}

FailureKind status_kind(int status) noexcept {
  if (status == 408) return FailureKind::kTimeout;
  if (status == 429) return FailureKind::kRateLimited;
  if (status == 425 || (status >= 500 && status <= kLastStatus)) return FailureKind::kServerError;
  if (status >= 400 && status < 500) return FailureKind::kClientError;
  return FailureKind::kUnexpectedStatus;
}

bool trimmed_iequals(std::string_view value, std::string_view word) noexcept {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.size() != word.size()) return false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = (value[i] >= 'A' && value[i] <= 'Z') ? static_cast<char>(value[i] - 'A' + 'a') : value[i];
    if (c != word[i]) return false;
  }
  return true;
}

Classification transport_failure(TransportError transport, int http_status) noexcept {
  switch (transport) {
    case TransportError::kConnect:
    case TransportError::kTls:
    case TransportError::kDns:
    case TransportError::kReset:
      return {Disposition::kRetry, FailureKind::kNetwork, to_string(transport), http_status};
    case TransportError::kTimeoutConnect:
    case TransportError::kTimeoutFirstByte:
    case TransportError::kTimeoutTotal:
      return {Disposition::kRetry, FailureKind::kTimeout, to_string(transport), http_status};
    case TransportError::kNone:
    case TransportError::kMalformedResponse:
    case TransportError::kOther:
      break;
  }
  return {Disposition::kFail, FailureKind::kOther, to_string(TransportError::kOther), http_status};
}

}  // namespace

std::string_view to_string(TransportError error) noexcept {
  switch (error) {
    case TransportError::kNone:
      return "none";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kTls:
      return "tls";
    case TransportError::kDns:
      return "dns";
    case TransportError::kTimeoutConnect:
      return "timeout_connect";
    case TransportError::kTimeoutFirstByte:
      return "timeout_first_byte";
    case TransportError::kTimeoutTotal:
      return "timeout_total";
    case TransportError::kReset:
      return "reset";
    case TransportError::kMalformedResponse:
      return "malformed_response";
    case TransportError::kOther:
      return "transport_other";
  }
  return "transport_other";
}

std::string_view to_string(Disposition disposition) noexcept {
  switch (disposition) {
    case Disposition::kSuccess:
      return "success";
    case Disposition::kRetry:
      return "retry";
    case Disposition::kFail:
      return "fail";
  }
  return "fail";
}

std::string_view to_string(FailureKind kind) noexcept {
  switch (kind) {
    case FailureKind::kNone:
      return "none";
    case FailureKind::kNetwork:
      return "network";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kRateLimited:
      return "rate_limited";
    case FailureKind::kServerError:
      return "server_error";
    case FailureKind::kClientError:
      return "client_error";
    case FailureKind::kMalformedResponse:
      return "malformed_response";
    case FailureKind::kUnexpectedStatus:
      return "unexpected_status";
    case FailureKind::kOther:
      return "other";
  }
  return "other";
}

Classification classify(TransportError transport, int http_status, const HeaderList& headers) noexcept {
  if (transport != TransportError::kNone && transport != TransportError::kMalformedResponse) {
    return transport_failure(transport, http_status);
  }
  if (http_status >= 200 && http_status < 300) {
    if (transport == TransportError::kMalformedResponse) {
      return {Disposition::kRetry, FailureKind::kMalformedResponse, to_string(transport), http_status};
    }
    return {Disposition::kSuccess, FailureKind::kNone, "ok", http_status};
  }
  Classification result{is_retryable_status(http_status) ? Disposition::kRetry : Disposition::kFail,
                        status_kind(http_status), status_label(http_status), http_status};
  if (const std::string* should_retry = find_header(headers, "x-should-retry")) {
    if (trimmed_iequals(*should_retry, "true")) result.disposition = Disposition::kRetry;
    if (trimmed_iequals(*should_retry, "false")) result.disposition = Disposition::kFail;
  }
  return result;
}

}  // namespace kafka_llm::policy
