#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace kafka_llm::format {

/// The request-body fields that decide what a model generates, and therefore feed the prompt hash
/// (sorted, as they appear in the canonical form). Everything else is ignored: transport and
/// bookkeeping fields such as `stream`, `stream_options`, `user`, `metadata`, `store`,
/// `service_tier` and `request_id` do not change the prompt.
inline constexpr std::array<std::string_view, 29> kPromptHashFields = {"best_of",
                                                                       "dimensions",
                                                                       "echo",
                                                                       "encoding_format",
                                                                       "frequency_penalty",
                                                                       "function_call",
                                                                       "functions",
                                                                       "input",
                                                                       "logit_bias",
                                                                       "logprobs",
                                                                       "max_completion_tokens",
                                                                       "max_tokens",
                                                                       "messages",
                                                                       "model",
                                                                       "n",
                                                                       "parallel_tool_calls",
                                                                       "presence_penalty",
                                                                       "prompt",
                                                                       "response_format",
                                                                       "seed",
                                                                       "stop",
                                                                       "suffix",
                                                                       "system",
                                                                       "temperature",
                                                                       "tool_choice",
                                                                       "tools",
                                                                       "top_k",
                                                                       "top_logprobs",
                                                                       "top_p"};

/// Lower-case hex SHA-256 (64 characters) of `data`, computed with OpenSSL EVP.
/// Throws std::runtime_error only if OpenSSL itself fails (allocation failure).
std::string sha256_hex(std::string_view data);

/// The canonical serialization the prompt hash is computed over: a compact JSON object holding the
/// kPromptHashFields present in `body` (a field that is null counts as absent), with every object's
/// keys in byte order at every level, no whitespace, strings escaped like nlohmann::json::dump and
/// floating-point numbers with an integral value (1.0) written as integers (1). So two bodies that
/// differ only in key order, whitespace, number spelling or non-prompt fields serialize
/// identically. A body that is not an object serializes as `{}`.
std::string canonical_prompt_json(const nlohmann::json& body);

/// sha256_hex(canonical_prompt_json(body)): the `prompt_hash` header of every output.
std::string prompt_hash(const nlohmann::json& body);

}  // namespace kafka_llm::format
