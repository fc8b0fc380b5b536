#include "kafka_llm/kafka/queue_watcher.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "kafka_llm/common/errors.hpp"

namespace kafka_llm::kafka {

QueueWatcher::QueueWatcher(boost::asio::io_context& io, rd_kafka_queue_t* queue,
                           std::function<void()> on_ready)
    : queue_(queue), on_ready_(std::move(on_ready)), read_end_(io) {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
    throw Error(std::string("pipe2 failed: ") + std::strerror(errno));
  }
  read_end_.assign(fds[0]);
  write_fd_ = fds[1];
  static constexpr char kWakeByte = 'k';
  rd_kafka_queue_io_event_enable(queue_, write_fd_, &kWakeByte, 1);
  arm();
}

QueueWatcher::~QueueWatcher() {
  rd_kafka_queue_io_event_enable(queue_, -1, nullptr, 0);
  boost::system::error_code ignored;
  read_end_.cancel(ignored);
  read_end_.close(ignored);
  if (write_fd_ >= 0) ::close(write_fd_);
}

void QueueWatcher::arm() {
  read_end_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this](boost::system::error_code ec) {
                         if (ec) return;  // cancelled: the watcher is going away
                         std::array<char, 256> sink{};
                         while (::read(read_end_.native_handle(), sink.data(), sink.size()) > 0) {
                         }
                         on_ready_();
                         arm();
                       });
}

}  // namespace kafka_llm::kafka
