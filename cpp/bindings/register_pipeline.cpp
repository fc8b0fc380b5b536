#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "kafka_llm/pipeline/config_keys.hpp"
#include "kafka_llm/pipeline/pipeline.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

void register_config(py::module_& m) {
  using pipeline::PipelineConfig;
  py::class_<PipelineConfig>(m, "PipelineConfig")
      .def_static(
          "parse",
          [](const std::string& document_json, const std::map<std::string, std::string>& env,
             const std::string& file) {
            pipeline::ConfigSource source{file, {env.begin(), env.end()}};
            return PipelineConfig::parse(nlohmann::json::parse(document_json), source);
          },
          py::arg("document_json"), py::arg("env"), py::arg("file") = "",
          "Parses and checks the configuration document as written; raises ConfigError naming the key.")
      .def("view_json", [](const PipelineConfig& c) { return c.view().dump(); });
  m.def(
      "config_reference",
      [] {
        std::vector<std::tuple<std::string, std::string, std::string, std::string>> rows;
        for (const auto& k : pipeline::config_keys()) {
          rows.emplace_back(k.path, k.type, k.default_value, k.description);
        }
        return rows;
      },
      "Every configuration key: (path, type, default, description).");
  m.def(
      "config_env_overrides",
      [] {
        std::vector<std::tuple<std::string, std::string, std::string>> rows;
        for (const auto& e : pipeline::config_env_overrides())
          rows.emplace_back(e.name, e.overrides, e.description);
        return rows;
      },
      "The environment overrides: (variable, key, description).");
  m.def(
      "parse_duration_ms",
      [](const std::string& value_json, const std::string& key) {
        return pipeline::parse_duration(nlohmann::json::parse(value_json), key).count();
      },
      py::arg("value_json"), py::arg("key"), "A duration (30s, 500ms, 1h30m, or seconds) in ms.");
}

}  // namespace

void register_pipeline(py::module_& m) {
  using pipeline::Pipeline;
  register_config(m);
  py::class_<Pipeline>(m, "Pipeline")
      .def(
          py::init([](const pipeline::PipelineConfig& config) { return std::make_unique<Pipeline>(config); }),
          py::arg("config"), "Creates the clients of a parsed configuration.")
      .def(
          "register_embedded_provider",
          [](Pipeline& p, const std::string& name, const py::function& fn) {
            // The Python callable may only be touched, copied or destroyed with the GIL held.
            std::shared_ptr<py::function> holder(new py::function(fn), [](py::function* f) {
              py::gil_scoped_acquire gil;
              delete f;
            });
            p.register_embedded_provider(name, [holder](std::string_view path, const std::string& body) {
              py::gil_scoped_acquire gil;
              py::tuple result = (*holder)(std::string(path), body);
              return pipeline::EmbeddedResult{result[0].cast<int>(), result[1].cast<std::string>()};
            });
          },
          py::arg("name"), py::arg("fn"),
          "fn(path: str, body_json: str) -> (status_code: int, body_json: str), called on a provider thread.")
      .def("start", &Pipeline::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &Pipeline::stop, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("running", &Pipeline::running)
      .def("stats_json", [](const Pipeline& p) { return p.stats().dump(); })
      .def("prometheus", &Pipeline::prometheus)
      .def(
          "submit",
          [](Pipeline& p, const std::string& envelope_json, int timeout_ms) {
            auto envelope = nlohmann::json::parse(envelope_json);
            py::gil_scoped_release release;
            return p.submit(std::move(envelope), timeout_ms);
          },
          py::arg("envelope_json"), py::arg("timeout_ms") = 10000);
}

}  // namespace kafka_llm::bindings
