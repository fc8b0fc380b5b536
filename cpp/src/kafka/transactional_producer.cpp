#include "kafka_llm/kafka/transactional_producer.hpp"

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::kafka {

namespace {
TxnOutcome outcome_of(rd_kafka_error_t* raw) {
  ErrorPtr error(raw);
  if (!error) return {};
  TxnOutcome out;
  out.message = rd_kafka_error_string(error.get());
  if (rd_kafka_error_is_fatal(error.get())) {
    out.kind = TxnOutcome::Kind::kFatal;
  } else if (rd_kafka_error_is_retriable(error.get()) && !rd_kafka_error_txn_requires_abort(error.get())) {
    out.kind = TxnOutcome::Kind::kRetriable;
  } else {
    // Requires an abort, or is neither retriable nor abortable (a call out of state): either way
    // the transaction cannot be trusted.
    out.kind = TxnOutcome::Kind::kAbortable;
  }
  return out;
}
}  // namespace

GroupMetadataPtr group_metadata(const Consumer& consumer) {
  return GroupMetadataPtr(rd_kafka_consumer_group_metadata(consumer.handle()));
}

TransactionalProducer::TransactionalProducer(const Properties& props, const std::string& transactional_id,
                                             int timeout_ms)
    : transactional_id_(transactional_id) {
  Properties effective = props;
  set_property(effective, "transactional.id", transactional_id);
  set_property(effective, "enable.idempotence", "true");
  producer_ = std::make_unique<Producer>(effective);
  ErrorPtr error(rd_kafka_init_transactions(producer_->handle(), timeout_ms));
  if (error) {
    throw KafkaError("cannot start the transactional producer " + transactional_id + ": " +
                     rd_kafka_error_string(error.get()));
  }
}

TxnOutcome TransactionalProducer::begin() {
  return outcome_of(rd_kafka_begin_transaction(producer_->handle()));
}

TxnOutcome TransactionalProducer::produce(const std::string& topic, const std::optional<std::string>& key,
                                          const std::string& value, const HeaderList& headers) {
  for (;;) {
    const auto err = producer_->produce(topic, key ? std::optional<std::string_view>(*key) : std::nullopt,
                                        value, headers, DeliveryCallback{});
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // The transaction cannot commit without this record (e.g. larger than message.max.bytes).
      return {TxnOutcome::Kind::kAbortable,
              std::string("producing to ") + topic + " failed: " + rd_kafka_err2str(err)};
    }
    producer_->poll(10);
  }
}

TxnOutcome TransactionalProducer::send_offsets(const std::vector<TopicPartition>& offsets,
                                               const rd_kafka_consumer_group_metadata_t* metadata,
                                               int timeout_ms) {
  auto list = to_rd_list(offsets);
  return outcome_of(
      rd_kafka_send_offsets_to_transaction(producer_->handle(), list.get(), metadata, timeout_ms));
}

TxnOutcome TransactionalProducer::commit(int timeout_ms) {
  return outcome_of(rd_kafka_commit_transaction(producer_->handle(), timeout_ms));
}

TxnOutcome TransactionalProducer::abort(int timeout_ms) {
  return outcome_of(rd_kafka_abort_transaction(producer_->handle(), timeout_ms));
}

}  // namespace kafka_llm::kafka
