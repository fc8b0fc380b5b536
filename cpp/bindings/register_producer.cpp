#include <pybind11/stl.h>

#include "bindings.hpp"
#include "closable.hpp"
#include "kafka_conversions.hpp"
#include "kafka_llm/kafka/blocking_producer.hpp"
#include "kafka_llm/kafka/delivery_producer.hpp"
#include "kafka_llm/kafka/transactional_producer.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

using ProducerHandle = Closable<kafka::BlockingProducer>;
using DeliveryProducerHandle = Closable<kafka::DeliveryProducer>;
using TransactionalProducerHandle = Closable<kafka::TransactionalProducer>;
using DeliveryTuple = std::tuple<std::uint64_t, std::int32_t, std::int64_t, std::optional<std::string>>;
using ReportTuple = std::tuple<std::uint64_t, std::optional<std::string>, const char*>;

const char* persistence_name(kafka::DeliveryProducer::Persistence p) {
  switch (p) {
    case kafka::DeliveryProducer::Persistence::kPersisted:
      return "persisted";
    case kafka::DeliveryProducer::Persistence::kPossiblyPersisted:
      return "possibly_persisted";
    case kafka::DeliveryProducer::Persistence::kNotPersisted:
      break;
  }
  return "not_persisted";
}

std::vector<ReportTuple> report_tuples(std::vector<kafka::DeliveryProducer::Report>&& reports) {
  std::vector<ReportTuple> out;
  out.reserve(reports.size());
  for (auto& r : reports) out.emplace_back(r.id, std::move(r.error), persistence_name(r.persistence));
  return out;
}

std::optional<std::string_view> key_view(const std::optional<std::string>& key) {
  return key ? std::optional<std::string_view>(*key) : std::nullopt;
}

constexpr const char* kCloseDoc =
    "Waits for outstanding deliveries (up to 5 s), then destroys the client. Idempotent; later calls "
    "raise KafkaError.";

void register_blocking_producer(py::module_& m) {
  py::class_<ProducerHandle> cls(m, "Producer");
  cls.def(py::init([](const py::dict& props) {
            auto properties = to_properties(props);
            return std::make_unique<ProducerHandle>(std::make_unique<kafka::BlockingProducer>(properties),
                                                    "the Kafka producer");
          }),
          py::arg("properties"))
      .def(
          "produce",
          [](ProducerHandle& p, const std::string& topic, const py::bytes& value, const py::object& key,
             const PyHeaders& headers, std::int32_t partition, bool track) {
            const std::string payload(value);
            const auto k = to_key(key);
            const auto h = to_headers(headers);
            const auto tracking = track ? kafka::Tracking::kTracked : kafka::Tracking::kUntracked;
            py::gil_scoped_release release;  // waits while librdkafka's local queue is full
            return p.use([&](kafka::BlockingProducer& producer) {
              return producer.produce(topic, payload, key_view(k), h, partition, tracking);
            });
          },
          py::arg("topic"), py::arg("value"), py::arg("key") = py::none(), py::arg("headers") = PyHeaders{},
          py::arg("partition") = RD_KAFKA_PARTITION_UA, py::arg("track") = false,
          "Enqueues a record; returns its delivery id when track is true (else 0).")
      .def(
          "flush",
          [](ProducerHandle& p, int timeout_ms) {
            return p.use([&](kafka::BlockingProducer& producer) { return producer.flush(timeout_ms); });
          },
          py::arg("timeout_ms") = 30000, py::call_guard<py::gil_scoped_release>(),
          "Waits for every delivery report; returns the error messages of failed records.")
      .def(
          "take_deliveries",
          [](ProducerHandle& p) {
            std::vector<DeliveryTuple> out;
            for (auto& d :
                 p.use([](kafka::BlockingProducer& producer) { return producer.take_deliveries(); }))
              out.emplace_back(d.id, d.partition, d.offset, std::move(d.error));
            return out;
          },
          "(id, partition, offset, error or None) of each tracked record reported since the last call.");
  bind_close(cls, kCloseDoc);
}

void register_delivery_producer(py::module_& m) {
  py::class_<DeliveryProducerHandle> cls(m, "DeliveryProducer");
  cls.def(py::init([](const py::dict& props) {
            auto properties = to_properties(props);
            return std::make_unique<DeliveryProducerHandle>(
                std::make_unique<kafka::DeliveryProducer>(properties), "the Kafka delivery producer");
          }),
          py::arg("properties"))
      .def(
          "produce",
          [](DeliveryProducerHandle& p, const std::string& topic, const py::bytes& value,
             const py::object& key, const PyHeaders& headers, std::int32_t partition) {
            const std::string payload(value);
            const auto k = to_key(key);
            // Enqueueing never waits for the broker, so the GIL is kept (no hand-off latency).
            return p.use([&](kafka::DeliveryProducer& producer) {
              return producer.produce(topic, payload, key_view(k), to_headers(headers), partition);
            });
          },
          py::arg("topic"), py::arg("value"), py::arg("key") = py::none(), py::arg("headers") = PyHeaders{},
          py::arg("partition") = RD_KAFKA_PARTITION_UA,
          "Enqueues a record and returns its delivery id (never blocks on the broker).")
      .def(
          "poll",
          [](DeliveryProducerHandle& p, int timeout_ms) {
            return report_tuples(
                p.use([&](kafka::DeliveryProducer& producer) { return producer.poll(timeout_ms); }));
          },
          py::arg("timeout_ms") = 100, py::call_guard<py::gil_scoped_release>(),
          "Delivery reports (id, error or None, persistence) that arrived, waiting up to timeout_ms for "
          "one. persistence is 'persisted', 'possibly_persisted' (failed, but it may be on the broker) "
          "or 'not_persisted' (certainly not on the broker: safe to produce again).")
      .def(
          "flush",
          [](DeliveryProducerHandle& p, int timeout_ms) {
            return report_tuples(
                p.use([&](kafka::DeliveryProducer& producer) { return producer.flush(timeout_ms); }));
          },
          py::arg("timeout_ms") = 30000, py::call_guard<py::gil_scoped_release>(),
          "Waits until every record is delivered or failed (up to timeout_ms); returns the reports.")
      .def_property_readonly("outstanding", [](DeliveryProducerHandle& p) {
        return p.use([](kafka::DeliveryProducer& producer) { return producer.outstanding(); });
      });
  bind_close(cls, kCloseDoc);
}

void check(const kafka::TxnOutcome& outcome, const char* what) {
  if (outcome.ok()) return;
  const char* kind = outcome.kind == kafka::TxnOutcome::Kind::kFatal       ? "fatal"
                     : outcome.kind == kafka::TxnOutcome::Kind::kAbortable ? "abortable"
                                                                           : "retriable";
  throw KafkaError(std::string(what) + " failed (" + kind + "): " + outcome.message);
}

void register_transactional_producer(py::module_& m) {
  py::class_<TransactionalProducerHandle> cls(m, "TransactionalProducer");
  cls.def(py::init([](const py::dict& props, const std::string& transactional_id, int timeout_ms) {
            auto properties = to_properties(props);
            py::gil_scoped_release release;  // registers with the transaction coordinator
            return std::make_unique<TransactionalProducerHandle>(
                std::make_unique<kafka::TransactionalProducer>(properties, transactional_id, timeout_ms),
                "the transactional producer");
          }),
          py::arg("properties"), py::arg("transactional_id"), py::arg("timeout_ms") = 30000,
          "A transactional producer registered under transactional_id (fencing any earlier one).")
      .def(
          "begin",
          [](TransactionalProducerHandle& p) {
            check(p.use([](kafka::TransactionalProducer& producer) { return producer.begin(); }), "begin");
          },
          "Begins a transaction.")
      .def(
          "produce",
          [](TransactionalProducerHandle& p, const std::string& topic, const py::bytes& value,
             const py::object& key, const PyHeaders& headers) {
            const std::string payload(value);
            const auto k = to_key(key);
            const auto h = to_headers(headers);
            py::gil_scoped_release release;
            check(p.use([&](kafka::TransactionalProducer& producer) {
              return producer.produce(topic, k, payload, h);
            }),
                  "produce");
          },
          py::arg("topic"), py::arg("value"), py::arg("key") = py::none(), py::arg("headers") = PyHeaders{},
          "Enqueues a record of the open transaction.")
      .def(
          "commit",
          [](TransactionalProducerHandle& p, int timeout_ms) {
            check(p.use([&](kafka::TransactionalProducer& producer) { return producer.commit(timeout_ms); }),
                  "commit");
          },
          py::arg("timeout_ms") = 30000, py::call_guard<py::gil_scoped_release>(),
          "Flushes and commits the open transaction; raises KafkaError naming the failure's class.")
      .def(
          "abort",
          [](TransactionalProducerHandle& p, int timeout_ms) {
            check(p.use([&](kafka::TransactionalProducer& producer) { return producer.abort(timeout_ms); }),
                  "abort");
          },
          py::arg("timeout_ms") = 30000, py::call_guard<py::gil_scoped_release>(),
          "Aborts the open transaction.")
      .def_property_readonly("transactional_id", [](TransactionalProducerHandle& p) {
        return p.use([](kafka::TransactionalProducer& producer) { return producer.transactional_id(); });
      });
  bind_close(cls, kCloseDoc);
}

}  // namespace

void register_producer(py::module_& m) {
  register_blocking_producer(m);
  register_delivery_producer(m);
  register_transactional_producer(m);
}

}  // namespace kafka_llm::bindings
