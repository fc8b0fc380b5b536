#include "kafka_llm/http/transport_error.hpp"

namespace kafka_llm::http {

std::string_view to_string(TransportError error) noexcept {
  switch (error) {
    case TransportError::kNone:
      return "none";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kDns:
      return "dns";
    case TransportError::kTls:
      return "tls";
    case TransportError::kTimeoutConnect:
      return "timeout_connect";
    case TransportError::kTimeoutFirstByte:
      return "timeout_first_byte";
    case TransportError::kTimeoutTotal:
      return "timeout_total";
    case TransportError::kRecv:
      return "recv";
    case TransportError::kSend:
      return "send";
    case TransportError::kCancelled:
      return "cancelled";
    case TransportError::kOther:
      return "other";
  }
  return "unknown";
}

TransportError classify_curl_error(CURLcode code, bool connected) noexcept {
  switch (code) {
    case CURLE_OK:
      return TransportError::kNone;
    case CURLE_COULDNT_CONNECT:
      return TransportError::kConnect;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::kDns;
    case CURLE_OPERATION_TIMEDOUT:
      return connected ? TransportError::kTimeoutTotal : TransportError::kTimeoutConnect;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTls;
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
      return TransportError::kRecv;
    case CURLE_SEND_ERROR:
      return TransportError::kSend;
    default:
      return TransportError::kOther;
  }
}

}  // namespace kafka_llm::http
