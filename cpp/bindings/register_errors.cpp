#include "bindings.hpp"
#include "kafka_llm/common/errors.hpp"

namespace py = pybind11;

namespace kafka_llm::bindings {

namespace {

// The exception classes live as long as the interpreter; these borrowed handles are never
// released (releasing at static destruction would run after the interpreter is gone).
PyObject* g_base = nullptr;
PyObject* g_config_error = nullptr;
PyObject* g_kafka_error = nullptr;
PyObject* g_redis_error = nullptr;

PyObject* new_exception(py::module_& m, const char* name, PyObject* base, const char* doc) {
  const std::string qualified = std::string("kafka_llm._core.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(type));  // the module holds a reference
  return type;
}

}  // namespace

void register_errors(py::module_& m) {
  g_base = new_exception(m, "KafkaLlmError", PyExc_Exception, "Base of kafka-llm's errors.");
  g_config_error =
      new_exception(m, "ConfigError", g_base, "A configuration value is missing or wrong; `key` names it.");
  g_kafka_error = new_exception(m, "KafkaError", g_base, "A Kafka client failed.");
  g_redis_error = new_exception(m, "RedisError", g_base, "Redis failed.");
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const ConfigError& e) {
      py::object instance = py::handle(g_config_error)(e.what());
      instance.attr("key") = e.key();
      PyErr_SetObject(g_config_error, instance.ptr());
    } catch (const KafkaError& e) {
      PyErr_SetString(g_kafka_error, e.what());
    } catch (const RedisError& e) {
      PyErr_SetString(g_redis_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_base, e.what());
    }
  });
}

}  // namespace kafka_llm::bindings
