// kafka-llm-mock-provider: a native mock of the OpenAI and Anthropic HTTP APIs with injectable
// latency and faults. See usage_text() in options.cpp for the command line.

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "options.hpp"
#include "server.hpp"

namespace {

using kafka_llm::mock_provider::Options;

constexpr int kExitUsage = 2;
constexpr int kExitFailure = 1;

// Thousands of concurrent test connections exceed the usual soft limit of 1024 descriptors.
void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

// Written to a temporary name and renamed, so a reader polling the file never sees it half written.
void write_port_file(const std::string& path, std::uint16_t port) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << '\n';
    if (!out) throw std::runtime_error("--port-file: cannot write '" + path + "'");
  }
  std::filesystem::rename(temporary, path);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = kafka_llm::mock_provider::parse_options(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "kafka-llm-mock-provider: " << error.what() << "\n(see --help)\n";
    return kExitUsage;
  }
  if (options.help) {
    std::cout << kafka_llm::mock_provider::usage_text();
    return 0;
  }

  try {
    std::signal(SIGPIPE, SIG_IGN);
    raise_open_file_limit();
    kafka_llm::mock_provider::Server server(options);

    // The port file first: whoever reads the listening line may look for the file at once.
    if (options.port_file) write_port_file(*options.port_file, server.port());
    nlohmann::json listening = {{"event", "listening"}, {"host", server.host()}, {"port", server.port()}};
    if (options.unix_socket) listening["unix_socket"] = *options.unix_socket;
    std::cout << listening.dump() << '\n' << std::flush;

    server.run();
  } catch (const std::exception& error) {
    std::cerr << "kafka-llm-mock-provider: " << error.what() << '\n';
    return kExitFailure;
  }
  return 0;
}
