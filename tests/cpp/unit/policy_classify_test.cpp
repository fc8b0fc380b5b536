#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kafka_llm/policy/classify.hpp"

namespace kafka_llm::policy {
namespace {

const std::set<int> kRetryableStatuses{408, 425, 429, 500, 502, 503, 504, 529};

TEST(PolicyClassify, EveryStatusFrom100To599HasTheDocumentedDisposition) {
  for (int status = 100; status <= 599; ++status) {
    const Classification c = classify(TransportError::kNone, status, {});
    SCOPED_TRACE(status);
    EXPECT_EQ(c.http_status, status);
    if (status >= 200 && status < 300) {
      EXPECT_EQ(c.disposition, Disposition::kSuccess);
      EXPECT_EQ(c.kind, FailureKind::kNone);
      EXPECT_EQ(c.reason, "ok");
    } else {
      EXPECT_EQ(c.disposition, kRetryableStatuses.count(status) ? Disposition::kRetry : Disposition::kFail);
      EXPECT_EQ(c.reason, "http_" + std::to_string(status));
    }
  }
}

TEST(PolicyClassify, RetryableStatusesTable) {
  struct Case {
    int status;
    FailureKind kind;
  };
  for (const Case& c : {Case{408, FailureKind::kTimeout}, Case{425, FailureKind::kServerError},
                        Case{429, FailureKind::kRateLimited}, Case{500, FailureKind::kServerError},
                        Case{502, FailureKind::kServerError}, Case{503, FailureKind::kServerError},
                        Case{504, FailureKind::kServerError}, Case{529, FailureKind::kServerError}}) {
    const Classification result = classify(TransportError::kNone, c.status, {});
    SCOPED_TRACE(c.status);
    EXPECT_EQ(result.disposition, Disposition::kRetry);
    EXPECT_EQ(result.kind, c.kind);
  }
}

TEST(PolicyClassify, FinalStatusesTable) {
  struct Case {
    int status;
    FailureKind kind;
  };
  for (const Case& c : {Case{400, FailureKind::kClientError}, Case{401, FailureKind::kClientError},
                        Case{403, FailureKind::kClientError}, Case{404, FailureKind::kClientError},
                        Case{409, FailureKind::kClientError}, Case{413, FailureKind::kClientError},
                        Case{422, FailureKind::kClientError}, Case{499, FailureKind::kClientError},
                        Case{501, FailureKind::kServerError}, Case{505, FailureKind::kServerError},
                        Case{100, FailureKind::kUnexpectedStatus}, Case{301, FailureKind::kUnexpectedStatus},
                        Case{304, FailureKind::kUnexpectedStatus}}) {
    const Classification result = classify(TransportError::kNone, c.status, {});
    SCOPED_TRACE(c.status);
    EXPECT_EQ(result.disposition, Disposition::kFail);
    EXPECT_EQ(result.kind, c.kind);
  }
}

TEST(PolicyClassify, StatusesOutsideTheHttpRangeFailWithAnInvalidLabel) {
  for (int status : {0, -1, 99, 600, 999, 2147483647}) {
    const Classification c = classify(TransportError::kNone, status, {});
    SCOPED_TRACE(status);
    EXPECT_EQ(c.disposition, Disposition::kFail);
    EXPECT_EQ(c.kind, FailureKind::kUnexpectedStatus);
    EXPECT_EQ(c.reason, "http_invalid");
  }
}

TEST(PolicyClassify, TransportErrorsDecideRegardlessOfStatus) {
  struct Case {
    TransportError error;
    Disposition disposition;
    FailureKind kind;
    std::string_view reason;
  };
  for (const Case& c : {
           Case{TransportError::kConnect, Disposition::kRetry, FailureKind::kNetwork, "connect"},
           Case{TransportError::kTls, Disposition::kRetry, FailureKind::kNetwork, "tls"},
           Case{TransportError::kDns, Disposition::kRetry, FailureKind::kNetwork, "dns"},
           Case{TransportError::kReset, Disposition::kRetry, FailureKind::kNetwork, "reset"},
           Case{TransportError::kTimeoutConnect, Disposition::kRetry, FailureKind::kTimeout,
                "timeout_connect"},
           Case{TransportError::kTimeoutFirstByte, Disposition::kRetry, FailureKind::kTimeout,
                "timeout_first_byte"},
           Case{TransportError::kTimeoutTotal, Disposition::kRetry, FailureKind::kTimeout, "timeout_total"},
           Case{TransportError::kOther, Disposition::kFail, FailureKind::kOther, "transport_other"},
       }) {
    for (int status : {0, 200, 400, 503}) {
      const Classification result = classify(c.error, status, {{"x-should-retry", "false"}});
      SCOPED_TRACE(std::string(to_string(c.error)) + " " + std::to_string(status));
      EXPECT_EQ(result.disposition, c.disposition);
      EXPECT_EQ(result.kind, c.kind);
      EXPECT_EQ(result.reason, c.reason);
      EXPECT_EQ(result.http_status, status);
    }
  }
}

TEST(PolicyClassify, MalformedBodyRetriesOnlyOn2xx) {
  for (int status : {200, 201, 299}) {
    const Classification c = classify(TransportError::kMalformedResponse, status, {});
    EXPECT_EQ(c.disposition, Disposition::kRetry) << status;
    EXPECT_EQ(c.kind, FailureKind::kMalformedResponse) << status;
    EXPECT_EQ(c.reason, "malformed_response") << status;
  }
  // On an error status the body is not the point: the status decides.
  const Classification server = classify(TransportError::kMalformedResponse, 503, {});
  EXPECT_EQ(server.disposition, Disposition::kRetry);
  EXPECT_EQ(server.reason, "http_503");
  const Classification client = classify(TransportError::kMalformedResponse, 400, {});
  EXPECT_EQ(client.disposition, Disposition::kFail);
  EXPECT_EQ(client.reason, "http_400");
}

TEST(PolicyClassify, ShouldRetryHeaderOverridesTheStatus) {
  EXPECT_EQ(classify(TransportError::kNone, 400, {{"x-should-retry", "true"}}).disposition,
            Disposition::kRetry);
  EXPECT_EQ(classify(TransportError::kNone, 409, {{"X-Should-Retry", " TRUE\t"}}).disposition,
            Disposition::kRetry);
  EXPECT_EQ(classify(TransportError::kNone, 503, {{"x-should-retry", "false"}}).disposition,
            Disposition::kFail);
  EXPECT_EQ(classify(TransportError::kNone, 429, {{"x-should-retry", "False"}}).disposition,
            Disposition::kFail);
  // Garbage values and success responses are left alone; the label stays the status.
  EXPECT_EQ(classify(TransportError::kNone, 503, {{"x-should-retry", "maybe"}}).disposition,
            Disposition::kRetry);
  EXPECT_EQ(classify(TransportError::kNone, 400, {{"x-should-retry", "1"}}).disposition, Disposition::kFail);
  EXPECT_EQ(classify(TransportError::kNone, 200, {{"x-should-retry", "true"}}).disposition,
            Disposition::kSuccess);
  const Classification c = classify(TransportError::kNone, 400, {{"x-should-retry", "true"}});
  EXPECT_EQ(c.reason, "http_400");
  EXPECT_EQ(c.kind, FailureKind::kClientError);
}

TEST(PolicyClassify, LabelsAreStable) {
  EXPECT_EQ(to_string(TransportError::kNone), "none");
  EXPECT_EQ(to_string(TransportError::kMalformedResponse), "malformed_response");
  EXPECT_EQ(to_string(Disposition::kSuccess), "success");
  EXPECT_EQ(to_string(Disposition::kRetry), "retry");
  EXPECT_EQ(to_string(Disposition::kFail), "fail");
  EXPECT_EQ(to_string(FailureKind::kRateLimited), "rate_limited");
  EXPECT_EQ(to_string(FailureKind::kServerError), "server_error");
  EXPECT_EQ(to_string(FailureKind::kClientError), "client_error");
  EXPECT_EQ(to_string(FailureKind::kUnexpectedStatus), "unexpected_status");
  // The reason points to static storage: it outlives the call.
  std::string_view reason;
  { reason = classify(TransportError::kNone, 418, {}).reason; }
  EXPECT_EQ(reason, "http_418");
}

}  // namespace
}  // namespace kafka_llm::policy
