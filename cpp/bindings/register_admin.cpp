#include <pybind11/stl.h>

#include <map>

#include "bindings.hpp"
#include "closable.hpp"
#include "kafka_conversions.hpp"
#include "kafka_llm/kafka/admin.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

using AdminHandle = Closable<kafka::AdminClient>;
using TopicSpecs = std::vector<std::tuple<std::string, int>>;
using TopicConfig = std::map<std::string, std::string>;

std::vector<kafka::NewTopic> new_topics(const TopicSpecs& topics, const TopicConfig& config,
                                        int replication_factor = 1) {
  std::vector<kafka::NewTopic> list;
  for (const auto& [name, partitions] : topics) {
    kafka::NewTopic t{name, partitions, replication_factor, {}};
    for (const auto& [k, v] : config) t.config.emplace_back(k, v);
    list.push_back(std::move(t));
  }
  return list;
}

void register_group_types(py::module_& m) {
  py::class_<kafka::GroupMember>(m, "GroupMember")
      .def_readonly("member_id", &kafka::GroupMember::member_id)
      .def_readonly("client_id", &kafka::GroupMember::client_id)
      .def_readonly("host", &kafka::GroupMember::host)
      .def_property_readonly("assignment",
                             [](const kafka::GroupMember& member) { return to_pairs(member.assignment); })
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
}

void register_topic_requests(py::class_<AdminHandle>& cls) {
  cls.def(
         "create_topics",
         [](AdminHandle& admin, const TopicSpecs& topics, int timeout_ms, const TopicConfig& config) {
           auto list = new_topics(topics, config);
           py::gil_scoped_release release;
           admin.use([&](kafka::AdminClient& client) { client.create_topics(list, timeout_ms); });
         },
         py::arg("topics"), py::arg("timeout_ms") = 30000, py::arg("config") = TopicConfig{},
         "Creates topics (name, partitions) and waits until their partitions have leaders; existing "
         "topics are left as they are.")
      .def(
          "partition_count",
          [](AdminHandle& admin, const std::string& topic, int timeout_ms) {
            return admin.use(
                [&](kafka::AdminClient& client) { return client.partition_count(topic, timeout_ms); });
          },
          py::arg("topic"), py::arg("timeout_ms") = 5000, py::call_guard<py::gil_scoped_release>(),
          "The topic's partition count, -1 when it does not exist.")
      .def(
          "watermarks",
          [](AdminHandle& admin, const std::string& topic, std::int32_t partition, int timeout_ms) {
            return admin.use(
                [&](kafka::AdminClient& client) { return client.watermarks(topic, partition, timeout_ms); });
          },
          py::arg("topic"), py::arg("partition"), py::arg("timeout_ms") = 5000,
          py::call_guard<py::gil_scoped_release>(),
          "The partition's (low, high) offsets, asked of its leader.")
      .def(
          "offsets_for_times",
          [](AdminHandle& admin, const OffsetTuples& query, int timeout_ms) {
            auto list = from_tuples(query);
            py::gil_scoped_release release;
            return to_tuples(admin.use(
                [&](kafka::AdminClient& client) { return client.offsets_for_times(list, timeout_ms); }));
          },
          py::arg("query"), py::arg("timeout_ms") = 5000,
          "For each (topic, partition, epoch ms): the earliest offset whose record timestamp is at or "
          "after that time, -1 when there is none.");
}

void register_group_requests(py::class_<AdminHandle>& cls) {
  cls.def(
         "describe_group",
         [](AdminHandle& admin, const std::string& group, int timeout_ms) {
           return admin.use(
               [&](kafka::AdminClient& client) { return client.describe_group(group, timeout_ms); });
         },
         py::arg("group"), py::arg("timeout_ms") = 5000, py::call_guard<py::gil_scoped_release>(),
         "The group's state and active members.")
      .def(
          "committed_offsets",
          [](AdminHandle& admin, const std::string& group, const PartitionPairs& partitions, int timeout_ms) {
            auto list = from_pairs(partitions);
            py::gil_scoped_release release;
            return to_tuples(admin.use([&](kafka::AdminClient& client) {
              return client.committed_offsets(group, list, timeout_ms);
            }));
          },
          py::arg("group"), py::arg("partitions"), py::arg("timeout_ms") = 5000,
          "The group's committed offsets (-1001 where it has none), whatever the group's state.")
      .def(
          "alter_committed_offsets",
          [](AdminHandle& admin, const std::string& group, const OffsetTuples& offsets, int timeout_ms) {
            auto list = from_tuples(offsets);
            py::gil_scoped_release release;
            admin.use(
                [&](kafka::AdminClient& client) { client.alter_committed_offsets(group, list, timeout_ms); });
          },
          py::arg("group"), py::arg("offsets"), py::arg("timeout_ms") = 5000,
          "Sets the group's committed offsets; the broker refuses while the group has active members.");
}

void register_module_functions(py::module_& m) {
  m.def(
      "create_topics",
      [](const py::dict& props, const TopicSpecs& topics, int timeout_ms, const TopicConfig& config,
         int replication_factor) {
        auto list = new_topics(topics, config, replication_factor);
        auto properties = to_properties(props);
        py::gil_scoped_release release;
        kafka::create_topics(properties, list, timeout_ms);
      },
      py::arg("properties"), py::arg("topics"), py::arg("timeout_ms") = 30000,
      py::arg("config") = TopicConfig{}, py::arg("replication_factor") = 1,
      "Creates topics (name, partitions) with `replication_factor` replicas (-1: the broker's "
      "default.replication.factor) and waits until their partitions have leaders.");
  m.def(
      "partition_count",
      [](const py::dict& props, const std::string& topic, int timeout_ms) {
        auto properties = to_properties(props);
        py::gil_scoped_release release;
        return kafka::partition_count(properties, topic, timeout_ms);
      },
      py::arg("properties"), py::arg("topic"), py::arg("timeout_ms") = 5000);
}

}  // namespace

void register_admin(py::module_& m) {
  register_group_types(m);
  py::class_<AdminHandle> cls(m, "AdminClient");
  cls.def(py::init([](const py::dict& props) {
            auto properties = to_properties(props);
            py::gil_scoped_release release;
            return std::make_unique<AdminHandle>(std::make_unique<kafka::AdminClient>(properties),
                                                 "the admin client");
          }),
          py::arg("properties"));
  register_topic_requests(cls);
  register_group_requests(cls);
  bind_close(cls, "Destroys the client (idempotent); later calls raise KafkaError.");
  register_module_functions(m);
}

}  // namespace kafka_llm::bindings
