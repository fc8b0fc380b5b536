#include <pybind11/stl.h>

#include <variant>

#include "bindings.hpp"
#include "closable.hpp"
#include "kafka_conversions.hpp"
#include "kafka_llm/kafka/consumer.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

using ConsumerHandle = Closable<kafka::Consumer>;

/// A consumed record as Python sees it: bytes for key and value, (name, bytes) headers.
struct Record {
  std::string topic;
  std::int32_t partition;
  std::int64_t offset;
  std::optional<std::string> key;
  std::string value;
  HeaderList headers;
  std::int64_t timestamp_ms;
};

/// A non-fatal consumer error event (a broker down, a topic that does not exist, a partition end).
struct ErrorEvent {
  int code;
  std::string name;
  std::string reason;
  std::string topic;
  std::int32_t partition;
  std::int64_t offset;
};

Record to_record(const kafka::Message& m) {
  std::optional<std::string> key;
  if (auto k = m.key()) key = std::string(*k);
  return {std::string(m.topic()), m.partition(), m.offset(),      key,
          std::string(m.value()), m.headers(),   m.timestamp_ms()};
}

ErrorEvent to_error_event(const kafka::Message& m) {
  return {static_cast<int>(m.error()),
          rd_kafka_err2name(m.error()),
          m.error_string(),
          std::string(m.topic()),
          m.partition(),
          m.offset()};
}

std::string where(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  return topic + "[" + std::to_string(partition) + "]@" + std::to_string(offset);
}

void register_record(py::module_& m) {
  py::class_<Record>(m, "Record")
      .def_readonly("topic", &Record::topic)
      .def_readonly("partition", &Record::partition)
      .def_readonly("offset", &Record::offset)
      .def_property_readonly("key",
                             [](const Record& r) -> py::object {
                               if (!r.key) return py::none();
                               return py::bytes(*r.key);
                             })
      .def_property_readonly("value", [](const Record& r) { return py::bytes(r.value); })
      .def_property_readonly("headers",
                             [](const Record& r) {
                               py::list out;
                               for (const auto& [k, v] : r.headers)
                                 out.append(py::make_tuple(k, py::bytes(v)));
                               return out;
                             })
      .def_readonly("timestamp_ms", &Record::timestamp_ms)
      .def("__repr__",
           [](const Record& r) { return "<Record " + where(r.topic, r.partition, r.offset) + ">"; });

  py::class_<ErrorEvent>(m, "ErrorEvent")
      .def_readonly("code", &ErrorEvent::code)
      .def_readonly("name", &ErrorEvent::name)
      .def_readonly("reason", &ErrorEvent::reason)
      .def_readonly("topic", &ErrorEvent::topic)
      .def_readonly("partition", &ErrorEvent::partition)
      .def_readonly("offset", &ErrorEvent::offset)
      .def("__repr__", [](const ErrorEvent& e) {
        std::string out = "<ErrorEvent " + e.name;
        if (!e.topic.empty()) out += " " + where(e.topic, e.partition, e.offset);
        return out + ": " + e.reason + ">";
      });
}

void register_consumer_reads(py::class_<ConsumerHandle>& cls) {
  cls.def(
         "poll",
         [](ConsumerHandle& c, int timeout_ms) -> std::variant<std::monostate, Record, ErrorEvent> {
           std::optional<kafka::Message> message;
           {
             py::gil_scoped_release release;
             message = c.use([&](kafka::Consumer& consumer) { return consumer.poll_checked(timeout_ms); });
           }
           if (!message) return std::monostate{};
           if (message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) return to_error_event(*message);
           return to_record(*message);
         },
         py::arg("timeout_ms") = 1000)
      .def(
          "consume",
          [](ConsumerHandle& c, std::size_t max_records, int timeout_ms) {
            std::vector<Record> out;
            py::gil_scoped_release release;
            for (const auto& message :
                 c.use([&](kafka::Consumer& consumer) { return consumer.consume(max_records, timeout_ms); }))
              out.push_back(to_record(message));
            return out;
          },
          py::arg("max_records"), py::arg("timeout_ms"),
          "Records until max_records arrived or timeout_ms passed (the GIL is released meanwhile).");
}

void register_consumer_offsets(py::class_<ConsumerHandle>& cls) {
  cls.def(
         "commit",
         [](ConsumerHandle& c, const OffsetTuples& offsets) {
           auto list = from_tuples(offsets);
           py::gil_scoped_release release;
           const auto err = c.use(
               [&](kafka::Consumer& consumer) { return consumer.commit(list, kafka::CommitMode::kSync); });
           if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
             throw KafkaError(std::string("commit failed: ") + rd_kafka_err2str(err));
         },
         py::arg("offsets"))
      .def(
          "committed",
          [](ConsumerHandle& c, const PartitionPairs& partitions, int timeout_ms) {
            auto query = from_pairs(partitions);
            py::gil_scoped_release release;
            return to_tuples(
                c.use([&](kafka::Consumer& consumer) { return consumer.committed(query, timeout_ms); }));
          },
          py::arg("partitions"), py::arg("timeout_ms") = 5000,
          "The group's committed offsets (-1001 when none), without joining the group.")
      .def(
          "assign",
          [](ConsumerHandle& c, const OffsetTuples& partitions) {
            auto list = from_tuples(partitions);
            py::gil_scoped_release release;
            c.use([&](kafka::Consumer& consumer) { consumer.assign(list); });
          },
          py::arg("partitions"),
          "Assigns (topic, partition, offset) directly, without a consumer group; offset -1 is the "
          "end, -2 the beginning.")
      .def(
          "query_watermark_offsets",
          [](ConsumerHandle& c, const std::string& topic, std::int32_t partition, int timeout_ms) {
            return c.use([&](kafka::Consumer& consumer) {
              return consumer.query_watermarks(topic, partition, timeout_ms);
            });
          },
          py::arg("topic"), py::arg("partition"), py::arg("timeout_ms") = 5000,
          py::call_guard<py::gil_scoped_release>(),
          "The partition's (low, high) offsets, asked of the broker.")
      .def(
          "position",
          [](ConsumerHandle& c, const PartitionPairs& partitions) {
            auto list = from_pairs(partitions);
            py::gil_scoped_release release;
            return to_tuples(c.use([&](kafka::Consumer& consumer) { return consumer.position(list); }));
          },
          py::arg("partitions"),
          "The next offset this consumer will hand out per assigned partition (-1001 before the "
          "first record).")
      .def("assignment", [](ConsumerHandle& c) {
        return to_pairs(c.use([](kafka::Consumer& consumer) { return consumer.assignment(); }));
      });
}

}  // namespace

void register_consumer(py::module_& m) {
  register_record(m);
  py::class_<ConsumerHandle> cls(m, "Consumer");
  cls.def(py::init([](const py::dict& props, const std::vector<std::string>& topics) {
            auto properties = to_properties(props);
            py::gil_scoped_release release;
            auto consumer = std::make_unique<kafka::Consumer>(properties);
            if (!topics.empty()) consumer->subscribe(topics);
            return std::make_unique<ConsumerHandle>(std::move(consumer), "the Kafka consumer");
          }),
          py::arg("properties"), py::arg("topics") = std::vector<std::string>{});
  register_consumer_reads(cls);
  register_consumer_offsets(cls);
  bind_close(cls,
             "Leaves the consumer group (serving the final revoke) and destroys the client. Idempotent; "
             "later calls raise KafkaError.");
}

}  // namespace kafka_llm::bindings
