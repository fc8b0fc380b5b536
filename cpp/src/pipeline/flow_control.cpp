#include "kafka_llm/pipeline/flow_control.hpp"

#include <algorithm>

namespace kafka_llm::pipeline {

FlowControl::FlowControl(std::size_t max_handlers, std::size_t min_backlog) noexcept
    : max_handlers_(max_handlers), high_(std::max(max_handlers, min_backlog)), low_(high_ / 2) {}

FlowDecision FlowControl::decide(bool paused, std::size_t backlog) const noexcept {
  if (!paused && backlog >= high_) return FlowDecision::kPause;
  if (paused && backlog <= low_) return FlowDecision::kResume;
  return FlowDecision::kKeep;
}

}  // namespace kafka_llm::pipeline
