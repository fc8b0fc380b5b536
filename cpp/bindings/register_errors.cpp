#include "bindings.hpp"
#include "kafka_llm/common/errors.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

void register_errors(py::module_& m) {
  // Named Python exceptions for the core's exception types; ConfigError carries `.key`.
  static py::exception<Error> base(m, "KafkaLlmError");
  static py::exception<ConfigError> config_error(m, "ConfigError", base.ptr());
  static py::exception<KafkaError> kafka_error(m, "KafkaError", base.ptr());
  static py::exception<RedisError> redis_error(m, "RedisError", base.ptr());
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const ConfigError& e) {
      py::object instance = config_error(e.what());
      instance.attr("key") = e.key();
      PyErr_SetObject(config_error.ptr(), instance.ptr());
    } catch (const KafkaError& e) {
      PyErr_SetString(kafka_error.ptr(), e.what());
    } catch (const RedisError& e) {
      PyErr_SetString(redis_error.ptr(), e.what());
    } catch (const Error& e) {
      PyErr_SetString(base.ptr(), e.what());
    }
  });
}

}  // namespace kafka_llm::bindings
