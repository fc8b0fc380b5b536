#include <pybind11/stl.h>

#include <atomic>
#include <mutex>

#include "bindings.hpp"
#include "kafka_llm/common/errors.hpp"
#include "kafka_llm/kafka/admin.hpp"
#include "kafka_llm/kafka/consumer.hpp"
#include "kafka_llm/kafka/producer.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

kafka::Properties to_properties(const py::dict& props) {
  kafka::Properties out;
  for (const auto& [name, value] : props) {
    out.emplace_back(py::str(name).cast<std::string>(), py::str(value).cast<std::string>());
  }
  return out;
}

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

/// A blocking producer for tools and tests: produce() enqueues, flush() waits for every delivery
/// report and returns the failures. A record produced with track=true also leaves its delivery
/// (id, partition, offset, error) for take_deliveries(), for callers that need to know where each
/// record landed; untracked records keep nothing.
class BlockingProducer {
 public:
  struct Delivery {
    std::uint64_t id;
    std::int32_t partition;
    std::int64_t offset;
    std::optional<std::string> error;
  };

  explicit BlockingProducer(const kafka::Properties& props) : producer_(props) {}

  /// Returns the record's delivery id (0 when not tracked).
  std::uint64_t produce(const std::string& topic, const std::string& value,
                        const std::optional<std::string>& key, const HeaderList& headers,
                        std::int32_t partition, bool track) {
    const std::uint64_t id = track ? ++next_id_ : 0;
    for (;;) {
      auto err = producer_.produce(
          topic, key ? std::optional<std::string_view>(*key) : std::nullopt, value, headers,
          [this, id](const kafka::DeliveryReport& r) {
            std::lock_guard lock(mutex_);
            if (!r.ok()) failures_.push_back(r.error_message);
            if (id != 0) {
              deliveries_.push_back({id, r.partition, r.offset,
                                     r.ok() ? std::nullopt : std::optional<std::string>(r.error_message)});
            }
          },
          partition);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return id;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
        throw KafkaError(std::string("produce failed: ") + rd_kafka_err2str(err));
      producer_.poll(50);
    }
  }

  std::vector<std::string> flush(int timeout_ms) {
    if (producer_.flush(timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw KafkaError("flush timed out with " + std::to_string(producer_.outstanding()) +
                       " records outstanding");
    }
    std::lock_guard lock(mutex_);
    return std::exchange(failures_, {});
  }

  /// Deliveries of tracked records reported since the last call.
  std::vector<Delivery> take_deliveries() {
    std::lock_guard lock(mutex_);
    return std::exchange(deliveries_, {});
  }

 private:
  // Declared before the producer: its destructor still runs delivery callbacks that use them.
  std::mutex mutex_;
  std::vector<std::string> failures_;
  std::vector<Delivery> deliveries_;
  std::uint64_t next_id_ = 0;
  kafka::Producer producer_;
};

/// A producer for event-loop callers (the HTTP service): produce() enqueues and returns a delivery
/// id at once; poll() serves delivery reports and returns (id, error or nullopt) for each record
/// whose fate is known. produce() may be called from any thread, poll()/flush() from one thread.
/// Reports are buffered here between poll() calls, so nothing is lost when poll() runs late.
class DeliveryProducer {
 public:
  using Report = std::pair<std::uint64_t, std::optional<std::string>>;

  explicit DeliveryProducer(const kafka::Properties& props) : producer_(props) {}

  /// Throws KafkaError when the record cannot be enqueued (e.g. a full local queue); then no
  /// report will ever carry the id.
  std::uint64_t produce(const std::string& topic, const std::string& value,
                        const std::optional<std::string>& key, const HeaderList& headers,
                        std::int32_t partition) {
    const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
    auto err = producer_.produce(
        topic, key ? std::optional<std::string_view>(*key) : std::nullopt, value, headers,
        [this, id](const kafka::DeliveryReport& r) {
          std::lock_guard lock(mutex_);
          reports_.emplace_back(id, r.ok() ? std::nullopt : std::optional<std::string>(r.error_message));
        },
        partition);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw KafkaError(std::string("produce failed: ") + rd_kafka_err2str(err));
    return id;
  }

  /// Waits up to timeout_ms for delivery reports; returns every report not yet returned.
  std::vector<Report> poll(int timeout_ms) {
    producer_.poll(timeout_ms);
    return take();
  }

  /// Waits up to timeout_ms until every record is delivered or failed; returns the reports not
  /// yet returned (outstanding() tells what is still in flight after a timeout).
  std::vector<Report> flush(int timeout_ms) {
    (void)producer_.flush(timeout_ms);
    return take();
  }

  int outstanding() const noexcept { return producer_.outstanding(); }

 private:
  std::vector<Report> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(reports_, {});
  }

  // Declared before producer_: its destructor still calls back into them.
  std::mutex mutex_;
  std::vector<Report> reports_;
  std::atomic<std::uint64_t> next_id_{1};
  kafka::Producer producer_;
};

/// The Python face of kafka::AdminClient: close() destroys the client, later calls raise.
class AdminHandle {
 public:
  explicit AdminHandle(const kafka::Properties& props)
      : client_(std::make_unique<kafka::AdminClient>(props)) {}

  kafka::AdminClient& get() {
    if (!client_) throw KafkaError("the admin client is closed");
    return *client_;
  }

  void close() { client_.reset(); }

 private:
  std::unique_ptr<kafka::AdminClient> client_;
};

std::vector<kafka::NewTopic> new_topics(const std::vector<std::tuple<std::string, int>>& topics,
                                        const std::map<std::string, std::string>& config) {
  std::vector<kafka::NewTopic> list;
  for (const auto& [name, partitions] : topics) {
    kafka::NewTopic t{name, partitions, 1, {}};
    for (const auto& [k, v] : config) t.config.emplace_back(k, v);
    list.push_back(std::move(t));
  }
  return list;
}

using OffsetTuples = std::vector<std::tuple<std::string, std::int32_t, std::int64_t>>;
using PartitionPairs = std::vector<std::pair<std::string, std::int32_t>>;

std::vector<kafka::TopicPartition> from_tuples(const OffsetTuples& offsets) {
  std::vector<kafka::TopicPartition> out;
  out.reserve(offsets.size());
  for (const auto& [topic, partition, offset] : offsets) out.push_back({topic, partition, offset});
  return out;
}

std::vector<kafka::TopicPartition> from_pairs(const PartitionPairs& partitions) {
  std::vector<kafka::TopicPartition> out;
  out.reserve(partitions.size());
  for (const auto& [topic, partition] : partitions) out.push_back({topic, partition});
  return out;
}

std::vector<std::tuple<std::string, std::int32_t, std::int64_t>> to_tuples(
    const std::vector<kafka::TopicPartition>& partitions) {
  std::vector<std::tuple<std::string, std::int32_t, std::int64_t>> out;
  out.reserve(partitions.size());
  for (const auto& tp : partitions) out.emplace_back(tp.topic, tp.partition, tp.offset);
  return out;
}

Record to_record(const kafka::Message& m) {
  std::optional<std::string> key;
  if (auto k = m.key()) key = std::string(*k);
  return {std::string(m.topic()), m.partition(), m.offset(),      key,
          std::string(m.value()), m.headers(),   m.timestamp_ms()};
}

}  // namespace

void register_kafka(py::module_& m) {
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
      .def("__repr__", [](const Record& r) {
        return "<Record " + r.topic + "[" + std::to_string(r.partition) + "]@" + std::to_string(r.offset) +
               ">";
      });

  py::class_<BlockingProducer>(m, "Producer")
      .def(py::init([](const py::dict& props) {
             return std::make_unique<BlockingProducer>(to_properties(props));
           }),
           py::arg("properties"))
      .def(
          "produce",
          [](BlockingProducer& p, const std::string& topic, const py::bytes& value, const py::object& key,
             const std::vector<std::pair<std::string, py::bytes>>& headers, std::int32_t partition,
             bool track) {
            HeaderList h;
            for (const auto& [name, v] : headers) h.emplace_back(name, std::string(v));
            std::optional<std::string> k;
            if (!key.is_none()) k = key.cast<std::string>();
            return p.produce(topic, std::string(value), k, h, partition, track);
          },
          py::arg("topic"), py::arg("value"), py::arg("key") = py::none(),
          py::arg("headers") = std::vector<std::pair<std::string, py::bytes>>{},
          py::arg("partition") = RD_KAFKA_PARTITION_UA, py::arg("track") = false,
          "Enqueues a record; returns its delivery id when track is true (else 0).")
      .def("flush", &BlockingProducer::flush, py::arg("timeout_ms") = 30000,
           py::call_guard<py::gil_scoped_release>(),
           "Waits for every delivery report; returns the error messages of failed records.")
      .def(
          "take_deliveries",
          [](BlockingProducer& p) {
            std::vector<std::tuple<std::uint64_t, std::int32_t, std::int64_t, std::optional<std::string>>>
                out;
            for (auto& d : p.take_deliveries())
              out.emplace_back(d.id, d.partition, d.offset, std::move(d.error));
            return out;
          },
          "(id, partition, offset, error or None) of each tracked record reported since the last call.");

  py::class_<DeliveryProducer>(m, "DeliveryProducer")
      .def(py::init([](const py::dict& props) {
             return std::make_unique<DeliveryProducer>(to_properties(props));
           }),
           py::arg("properties"))
      .def(
          "produce",
          [](DeliveryProducer& p, const std::string& topic, const py::bytes& value, const py::object& key,
             const std::vector<std::pair<std::string, py::bytes>>& headers, std::int32_t partition) {
            HeaderList h;
            for (const auto& [name, v] : headers) h.emplace_back(name, std::string(v));
            std::optional<std::string> k;
            if (!key.is_none()) k = key.cast<std::string>();
            // Enqueueing never waits for the broker, so the GIL is kept (no hand-off latency).
            return p.produce(topic, std::string(value), k, h, partition);
          },
          py::arg("topic"), py::arg("value"), py::arg("key") = py::none(),
          py::arg("headers") = std::vector<std::pair<std::string, py::bytes>>{},
          py::arg("partition") = RD_KAFKA_PARTITION_UA,
          "Enqueues a record and returns its delivery id (never blocks on the broker).")
      .def("poll", &DeliveryProducer::poll, py::arg("timeout_ms") = 100,
           py::call_guard<py::gil_scoped_release>(),
           "Delivery reports (id, error or None) that arrived, waiting up to timeout_ms for one.")
      .def("flush", &DeliveryProducer::flush, py::arg("timeout_ms") = 30000,
           py::call_guard<py::gil_scoped_release>(),
           "Waits until every record is delivered or failed (up to timeout_ms); returns the reports.")
      .def_property_readonly("outstanding", &DeliveryProducer::outstanding);

  py::class_<kafka::Consumer>(m, "Consumer")
      .def(py::init([](const py::dict& props, const std::vector<std::string>& topics) {
             auto consumer = std::make_unique<kafka::Consumer>(to_properties(props));
             if (!topics.empty()) consumer->subscribe(topics);
             return consumer;
           }),
           py::arg("properties"), py::arg("topics") = std::vector<std::string>{})
      .def(
          "poll",
          [](kafka::Consumer& c, int timeout_ms) -> std::optional<Record> {
            std::optional<kafka::Message> message;
            {
              py::gil_scoped_release release;
              message = c.poll(timeout_ms);
            }
            if (!message || message->error() != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
            return to_record(*message);
          },
          py::arg("timeout_ms") = 1000)
      .def(
          "consume",
          [](kafka::Consumer& c, std::size_t max_records, int timeout_ms) {
            std::vector<Record> out;
            py::gil_scoped_release release;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
            while (out.size() < max_records) {
              const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count();
              if (left <= 0) break;
              auto message = c.poll(static_cast<int>(std::min<long>(left, 100)));
              if (message && message->error() == RD_KAFKA_RESP_ERR_NO_ERROR)
                out.push_back(to_record(*message));
            }
            return out;
          },
          py::arg("max_records"), py::arg("timeout_ms"),
          "Records until max_records arrived or timeout_ms passed (the GIL is released meanwhile).")
      .def(
          "commit",
          [](kafka::Consumer& c, const OffsetTuples& offsets) {
            auto list = from_tuples(offsets);
            py::gil_scoped_release release;
            if (auto err = c.commit(list, kafka::CommitMode::kSync); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
              throw KafkaError(std::string("commit failed: ") + rd_kafka_err2str(err));
            }
          },
          py::arg("offsets"))
      .def(
          "committed",
          [](kafka::Consumer& c, const PartitionPairs& partitions, int timeout_ms) {
            auto query = from_pairs(partitions);
            py::gil_scoped_release release;
            return to_tuples(c.committed(query, timeout_ms));
          },
          py::arg("partitions"), py::arg("timeout_ms") = 5000,
          "The group's committed offsets (-1001 when none), without joining the group.")
      .def(
          "assign",
          [](kafka::Consumer& c, const OffsetTuples& partitions) {
            auto list = from_tuples(partitions);
            py::gil_scoped_release release;
            c.assign(list);
          },
          py::arg("partitions"),
          "Assigns (topic, partition, offset) directly, without a consumer group; offset -1 is the "
          "end, -2 the beginning.")
      .def(
          "query_watermark_offsets",
          [](kafka::Consumer& c, const std::string& topic, std::int32_t partition, int timeout_ms) {
            std::int64_t low = 0;
            std::int64_t high = 0;
            rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
            {
              py::gil_scoped_release release;
              err = rd_kafka_query_watermark_offsets(c.handle(), topic.c_str(), partition, &low, &high,
                                                     timeout_ms);
            }
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
              throw KafkaError("querying offsets of " + topic + "[" + std::to_string(partition) +
                               "] failed: " + rd_kafka_err2str(err));
            return std::make_pair(low, high);
          },
          py::arg("topic"), py::arg("partition"), py::arg("timeout_ms") = 5000,
          "The partition's (low, high) offsets, asked of the broker.")
      .def(
          "position",
          [](kafka::Consumer& c, const PartitionPairs& partitions) {
            auto list = kafka::to_rd_list(from_pairs(partitions));
            if (auto err = rd_kafka_position(c.handle(), list.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR)
              throw KafkaError(std::string("reading consumer positions failed: ") + rd_kafka_err2str(err));
            return to_tuples(kafka::from_rd_list(list.get()));
          },
          py::arg("partitions"),
          "The next offset this consumer will hand out per assigned partition (-1001 before the "
          "first record).")
      .def("assignment",
           [](const kafka::Consumer& c) {
             std::vector<std::pair<std::string, std::int32_t>> out;
             for (const auto& tp : c.assignment()) out.emplace_back(tp.topic, tp.partition);
             return out;
           })
      .def("close", &kafka::Consumer::close, py::call_guard<py::gil_scoped_release>());

  py::class_<kafka::GroupMember>(m, "GroupMember")
      .def_readonly("member_id", &kafka::GroupMember::member_id)
      .def_readonly("client_id", &kafka::GroupMember::client_id)
      .def_readonly("host", &kafka::GroupMember::host)
      .def_property_readonly("assignment",
                             [](const kafka::GroupMember& member) {
                               std::vector<std::pair<std::string, std::int32_t>> out;
                               for (const auto& tp : member.assignment)
                                 out.emplace_back(tp.topic, tp.partition);
                               return out;
                             })
      .def("__repr__", [](const kafka::GroupMember& member) {
        return "<GroupMember " + member.client_id + " " + member.host + " " + member.member_id + ">";
      });

  py::class_<kafka::GroupDescription>(m, "GroupDescription")
      .def_readonly("group_id", &kafka::GroupDescription::group_id)
      .def_readonly("state", &kafka::GroupDescription::state)
      .def_readonly("members", &kafka::GroupDescription::members)
      .def("__repr__", [](const kafka::GroupDescription& group) {
        return "<GroupDescription " + group.group_id + " " + group.state +
               " members=" + std::to_string(group.members.size()) + ">";
      });

  py::class_<AdminHandle>(m, "AdminClient")
      .def(py::init([](const py::dict& props) {
             auto properties = to_properties(props);
             py::gil_scoped_release release;
             return std::make_unique<AdminHandle>(properties);
           }),
           py::arg("properties"))
      .def(
          "create_topics",
          [](AdminHandle& admin, const std::vector<std::tuple<std::string, int>>& topics, int timeout_ms,
             const std::map<std::string, std::string>& config) {
            auto list = new_topics(topics, config);
            py::gil_scoped_release release;
            admin.get().create_topics(list, timeout_ms);
          },
          py::arg("topics"), py::arg("timeout_ms") = 30000,
          py::arg("config") = std::map<std::string, std::string>{},
          "Creates topics (name, partitions) and waits until their partitions have leaders; existing "
          "topics are left as they are.")
      .def(
          "partition_count",
          [](AdminHandle& admin, const std::string& topic, int timeout_ms) {
            py::gil_scoped_release release;
            return admin.get().partition_count(topic, timeout_ms);
          },
          py::arg("topic"), py::arg("timeout_ms") = 5000,
          "The topic's partition count, -1 when it does not exist.")
      .def(
          "watermarks",
          [](AdminHandle& admin, const std::string& topic, std::int32_t partition, int timeout_ms) {
            py::gil_scoped_release release;
            return admin.get().watermarks(topic, partition, timeout_ms);
          },
          py::arg("topic"), py::arg("partition"), py::arg("timeout_ms") = 5000,
          "The partition's (low, high) offsets, asked of its leader.")
      .def(
          "offsets_for_times",
          [](AdminHandle& admin, const OffsetTuples& query, int timeout_ms) {
            auto list = from_tuples(query);
            py::gil_scoped_release release;
            return to_tuples(admin.get().offsets_for_times(list, timeout_ms));
          },
          py::arg("query"), py::arg("timeout_ms") = 5000,
          "For each (topic, partition, epoch ms): the earliest offset whose record timestamp is at or "
          "after that time, -1 when there is none.")
      .def(
          "describe_group",
          [](AdminHandle& admin, const std::string& group, int timeout_ms) {
            py::gil_scoped_release release;
            return admin.get().describe_group(group, timeout_ms);
          },
          py::arg("group"), py::arg("timeout_ms") = 5000, "The group's state and active members.")
      .def(
          "committed_offsets",
          [](AdminHandle& admin, const std::string& group, const PartitionPairs& partitions, int timeout_ms) {
            auto list = from_pairs(partitions);
            py::gil_scoped_release release;
            return to_tuples(admin.get().committed_offsets(group, list, timeout_ms));
          },
          py::arg("group"), py::arg("partitions"), py::arg("timeout_ms") = 5000,
          "The group's committed offsets (-1001 where it has none), whatever the group's state.")
      .def(
          "alter_committed_offsets",
          [](AdminHandle& admin, const std::string& group, const OffsetTuples& offsets, int timeout_ms) {
            auto list = from_tuples(offsets);
            py::gil_scoped_release release;
            admin.get().alter_committed_offsets(group, list, timeout_ms);
          },
          py::arg("group"), py::arg("offsets"), py::arg("timeout_ms") = 5000,
          "Sets the group's committed offsets; the broker refuses while the group has active members.")
      .def("close", &AdminHandle::close, py::call_guard<py::gil_scoped_release>(),
           "Destroys the client (idempotent); later calls raise KafkaError.")
      .def("__enter__", [](AdminHandle& admin) -> AdminHandle& { return admin; })
      .def("__exit__", [](AdminHandle& admin, const py::args&) {
        py::gil_scoped_release release;
        admin.close();
      });

  m.def(
      "create_topics",
      [](const py::dict& props, const std::vector<std::tuple<std::string, int>>& topics, int timeout_ms,
         const std::map<std::string, std::string>& config) {
        auto list = new_topics(topics, config);
        auto properties = to_properties(props);
        py::gil_scoped_release release;
        kafka::create_topics(properties, list, timeout_ms);
      },
      py::arg("properties"), py::arg("topics"), py::arg("timeout_ms") = 30000,
      py::arg("config") = std::map<std::string, std::string>{},
      "Creates topics (name, partitions) and waits until their partitions have leaders.");
  m.def(
      "partition_count",
      [](const py::dict& props, const std::string& topic, int timeout_ms) {
        auto properties = to_properties(props);
        py::gil_scoped_release release;
        return kafka::partition_count(properties, topic, timeout_ms);
      },
      py::arg("properties"), py::arg("topic"), py::arg("timeout_ms") = 5000);
}

}  // namespace kafka_llm::bindings
