#pragma once

#include <hiredis/async.h>

#include <memory>

namespace kafka_llm::redis {

// One RAII owner per hiredis C handle. hiredis frees an async context itself after a failed
// connect and after a disconnect it noticed; its owner then releases it (see the event-loop
// cleanup hook in redis_client.cpp) instead of freeing it again.

struct AsyncContextDeleter {
  /// Fails the context's pending commands through their callbacks, then frees it.
  void operator()(redisAsyncContext* ctx) const noexcept { redisAsyncFree(ctx); }
};

using AsyncContextPtr = std::unique_ptr<redisAsyncContext, AsyncContextDeleter>;

}  // namespace kafka_llm::redis
