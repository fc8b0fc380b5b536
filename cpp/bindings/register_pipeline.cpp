#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "kafka_llm/pipeline/pipeline.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

void register_pipeline(py::module_& m) {
  using pipeline::Pipeline;
  py::class_<Pipeline>(m, "Pipeline")
      .def(py::init([](const std::string& config_json) {
             return std::make_unique<Pipeline>(
                 pipeline::PipelineConfig::from_json(nlohmann::json::parse(config_json)));
           }),
           py::arg("config_json"), "Validates the normalized configuration and creates the clients.")
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
