#include "kafka_llm/pipeline/transaction_runner.hpp"

#include "kafka_llm/common/log.hpp"

namespace kafka_llm::pipeline {

std::string_view to_string(TransactionResult result) noexcept {
  switch (result) {
    case TransactionResult::kCommitted:
      return "committed";
    case TransactionResult::kAborted:
      return "aborted";
    case TransactionResult::kFenced:
      return "fenced";
  }
  return "unknown";
}

TransactionRunner::TransactionRunner(kafka::Properties props, std::string id_prefix,
                                     std::chrono::milliseconds timeout, Done done)
    : props_(std::move(props)), id_prefix_(std::move(id_prefix)), timeout_(timeout), done_(std::move(done)) {
  // A worker killed mid-transaction holds read_committed readers of its output partitions back until
  // the coordinator aborts that transaction: 10 s rather than librdkafka's minute, unless configured.
  kafka::set_default_property(props_, "transaction.timeout.ms", "10000");
  transactional_id_ = id_prefix_ + "-" + std::to_string(incarnation_);
  producer_ = std::make_unique<kafka::TransactionalProducer>(props_, transactional_id_,
                                                             static_cast<int>(timeout_.count()));
  thread_ = std::thread([this] { run(); });
}

TransactionRunner::~TransactionRunner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TransactionRunner::submit(TransactionBatch batch) {
  {
    std::lock_guard lock(mutex_);
    next_ = std::move(batch);
    busy_ = true;
  }
  wake_.notify_all();
}

bool TransactionRunner::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [this] { return !busy_.load(); });
}

std::string TransactionRunner::transactional_id() const {
  std::lock_guard lock(mutex_);
  return transactional_id_;
}

void TransactionRunner::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || next_.has_value(); });
    if (!next_) return;  // stopping with nothing under way
    TransactionBatch batch = std::move(*next_);
    next_.reset();
    lock.unlock();
    std::string message;
    const TransactionResult result = execute(batch, message);
    done_(std::move(batch), result, std::move(message));
    lock.lock();
    busy_ = false;
    idle_.notify_all();
  }
}

template <class Call>
kafka::TxnOutcome TransactionRunner::with_retries(Call&& call) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    auto outcome = call();
    if (outcome.kind != kafka::TxnOutcome::Kind::kRetriable || std::chrono::steady_clock::now() >= deadline) {
      if (outcome.kind == kafka::TxnOutcome::Kind::kRetriable)
        outcome.kind = kafka::TxnOutcome::Kind::kAbortable;
      return outcome;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TransactionResult TransactionRunner::execute(TransactionBatch& batch, std::string& message) {
  const int timeout_ms = static_cast<int>(timeout_.count());
  kafka::TxnOutcome outcome = producer_->begin();
  for (std::size_t i = 0; outcome.ok() && i < batch.outputs.size(); ++i) {
    const Output& output = batch.outputs[i];
    outcome = producer_->produce(output.topic, output.key, output.value, output.headers);
  }
  for (std::size_t g = 0; outcome.ok() && g < batch.groups.size(); ++g) {
    const auto& group = batch.groups[g];
    std::vector<kafka::TopicPartition> offsets;
    offsets.reserve(group.positions.size());
    for (const auto& p : group.positions)
      offsets.push_back({p.partition.topic, p.partition.partition, p.offset});
    outcome =
        with_retries([&] { return producer_->send_offsets(offsets, group.metadata.get(), timeout_ms); });
  }
  if (outcome.ok()) outcome = with_retries([&] { return producer_->commit(timeout_ms); });
  if (outcome.ok()) return TransactionResult::kCommitted;

  message = outcome.message;
  if (outcome.kind != kafka::TxnOutcome::Kind::kFatal) {
    const auto aborted = with_retries([&] { return producer_->abort(timeout_ms); });
    if (aborted.ok()) return TransactionResult::kAborted;
    message += "; the abort failed too: " + aborted.message;
  }
  // Fenced (or unable to abort): a new producer, with a new id, for the next transaction.
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return TransactionResult::kFenced;
      transactional_id_ = id_prefix_ + "-" + std::to_string(++incarnation_);
    }
    try {
      producer_.reset();
      producer_ = std::make_unique<kafka::TransactionalProducer>(props_, transactional_id(), timeout_ms);
      log(LogLevel::kWarning,
          "transactional producer replaced by " + transactional_id() + " after: " + message);
      return TransactionResult::kFenced;
    } catch (const std::exception& e) {
      log(LogLevel::kError,
          std::string("cannot make a new transactional producer (trying again): ") + e.what());
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

}  // namespace kafka_llm::pipeline
