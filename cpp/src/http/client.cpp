#include "kafka_llm/http/client.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kafka_llm/common/version.hpp"
#include "kafka_llm/http/curl_handles.hpp"

namespace kafka_llm::http {

std::string default_user_agent() {
  return "kafka-llm/" + std::string(version());
}

namespace {

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

bool valid_header(const std::string& name, const std::string& value) noexcept {
  const auto breaks_line = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  return !name.empty() && name.find(':') == std::string::npos &&
         std::none_of(name.begin(), name.end(), breaks_line) &&
         std::none_of(value.begin(), value.end(), breaks_line);
}

long major_http_version(long curl_version) noexcept {
  switch (curl_version) {
    case CURL_HTTP_VERSION_1_0:
    case CURL_HTTP_VERSION_1_1:
      return 1;
    case CURL_HTTP_VERSION_2_0:
      return 2;
    case CURL_HTTP_VERSION_3:
      return 3;
    default:
      return 0;
  }
}

}  // namespace

namespace detail {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using RequestId = Client::RequestId;
using ErrorCode = boost::system::error_code;

// A request id carries its slot index in the low bits, so cancel() and the per-request timer find the
// slot without a map, then the index of the core (shard) that runs it; the high 32 bits are a serial
// number (never 0) that makes the ids of a recycled slot distinct.
constexpr unsigned kSlotBits = 24;
constexpr RequestId kSlotMask = (RequestId{1} << kSlotBits) - 1;
constexpr unsigned kShardBits = 8;
constexpr unsigned kSerialShift = kSlotBits + kShardBits;
constexpr std::size_t kMaxShards = std::size_t{1} << kShardBits;

std::size_t shard_of(RequestId id) noexcept {
  return static_cast<std::size_t>((id >> kSlotBits) & (kMaxShards - 1));
}

// Whether the environment names a proxy for http or https, which libcurl then looks up (five getenv
// calls) on every request; without one, requests say "no proxy" and skip that.
bool environment_names_a_proxy() {
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

// The state behind a Client. Asio handlers hold it through weak pointers, so that a handler queued before
// the Client was destroyed finds nothing; a running handler holds it strongly, so that a callback may
// destroy the Client while the core is still on the stack.
class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  ClientCore(asio::io_context& io, ClientOptions options, std::size_t shard);
  ~ClientCore();
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;
  ClientCore(ClientCore&&) = delete;
  ClientCore& operator=(ClientCore&&) = delete;

  RequestId start(Request request, Client::DataHandler on_data, Client::DoneHandler on_done);
  void cancel(RequestId id);
  std::size_t in_flight() const noexcept { return in_flight_; }
  void close();

 private:
  enum class TransferState : std::uint8_t {
    kFree,     // in the pool
    kStarted,  // configured, not (yet) in the multi handle
    kRunning,  // in the multi handle
  };

  struct Transfer {
    Transfer(asio::io_context& io, ClientCore& owner, std::uint32_t slot_index)
        : core(&owner), first_byte_timer(io), slot(slot_index) {}

    ClientCore* core;
    EasyHandle easy;
    SlistHandle header_slist;
    HeaderList header_slist_source;  // the headers header_slist was built from
    Request request;
    Client::DataHandler on_data;
    Client::DoneHandler on_done;
    Response response;
    asio::steady_timer first_byte_timer;
    Clock::time_point started_at;
    std::array<char, CURL_ERROR_SIZE> error_buffer{};
    RequestId id = 0;
    std::size_t received_bytes = 0;
    std::uint32_t slot;
    TransferState state = TransferState::kFree;
    bool got_first_byte = false;
    bool cancel_requested = false;
  };

  // Asio's view of one socket curl asked us to watch, indexed by fd.
  struct SocketWatch {
    std::optional<asio::posix::stream_descriptor> descriptor;
    std::uint64_t generation = 0;  // 0: not watched; handlers of other generations are stale
    int wanted = 0;                // CURL_POLL_IN, CURL_POLL_OUT or CURL_POLL_INOUT
    bool read_pending = false;
    bool write_pending = false;
    bool owned = false;  // opened by open_socket_callback, closed by close_socket_callback
  };

  struct Completion {
    Client::DoneHandler on_done;
    Response response;
  };

  // Marks code that drains completions before it returns to the io_context.
  class DispatchScope {
   public:
    explicit DispatchScope(ClientCore& core) : core_(core) { ++core_.dispatch_depth_; }
    ~DispatchScope() { --core_.dispatch_depth_; }
    DispatchScope(const DispatchScope&) = delete;
    DispatchScope& operator=(const DispatchScope&) = delete;
    DispatchScope(DispatchScope&&) = delete;
    DispatchScope& operator=(DispatchScope&&) = delete;

   private:
    ClientCore& core_;
  };

  static int socket_callback(CURL* easy, curl_socket_t fd, int what, void* userp, void* socketp) noexcept;
  static int timer_callback(CURLM* multi, long timeout_ms, void* userp) noexcept;
  static curl_socket_t open_socket_callback(void* clientp, curlsocktype purpose,
                                            curl_sockaddr* address) noexcept;
  static int close_socket_callback(void* clientp, curl_socket_t fd) noexcept;
  static std::size_t header_callback(char* data, std::size_t size, std::size_t count, void* userp) noexcept;
  static std::size_t write_callback(char* data, std::size_t size, std::size_t count, void* userp) noexcept;

  // Transfers and their slots.
  Transfer& acquire_transfer();
  std::unique_ptr<Transfer> make_transfer(std::uint32_t slot);
  void release_slot(Transfer& transfer);
  Transfer* find(RequestId id) noexcept;
  const char* configure(Transfer& transfer);
  void update_header_list(Transfer& transfer);
  void arm_first_byte_timer(Transfer& transfer);
  void add_to_multi(Transfer& transfer);

  // Outcomes.
  void on_curl_done(Transfer& transfer, CURLcode code);
  void complete(Transfer& transfer, TransportError error, std::string message);
  void finish(Transfer& transfer);
  void collect_info(Transfer& transfer) noexcept;
  void note_first_byte(Transfer& transfer);
  bool charge(Transfer& transfer, std::size_t bytes);
  bool on_header(Transfer& transfer, std::string_view line);
  bool on_body(Transfer& transfer, std::string_view data);

  // Driving curl.
  void run_curl(curl_socket_t fd, int events);
  bool after_curl();
  void read_completed();
  void on_first_byte_timeout(RequestId id);
  int on_curl_socket(curl_socket_t fd, int what);
  void on_socket_ready(curl_socket_t fd, std::uint64_t generation, int direction, const ErrorCode& ec);
  void arm(curl_socket_t fd, SocketWatch& watch);
  void set_curl_timer(long timeout_ms);
  void on_curl_timer(std::uint64_t generation);
  SocketWatch& watch(curl_socket_t fd);
  SocketWatch* find_watch(curl_socket_t fd) noexcept;
  static void pause_watch(SocketWatch& watch) noexcept;
  static void unwatch(SocketWatch& watch) noexcept;

  // User callbacks.
  void ensure_drain();
  void post_drain();
  void drain();
  void shutdown_now() noexcept;

  asio::io_context& io_;
  ClientOptions options_;
  MultiHandle multi_;
  asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  std::uint64_t watch_generation_ = 0;
  std::uint32_t serial_ = 0;
  RequestId shard_bits_ = 0;  // this core's index, in place in a request id
  bool no_proxy_ = false;     // the environment names no proxy: tell libcurl not to look
  std::size_t in_flight_ = 0;
  std::vector<std::unique_ptr<Transfer>> slots_;
  std::vector<std::uint32_t> idle_slots_;   // free slots holding a Transfer, most recently used last
  std::vector<std::uint32_t> empty_slots_;  // free slots whose Transfer was trimmed
  std::vector<std::unique_ptr<SocketWatch>> watches_;
  std::vector<RequestId> started_;           // start() while inside curl: added after curl returns
  std::vector<RequestId> deferred_cancels_;  // cancel() while inside curl
  std::vector<Completion> completions_;      // decided outcomes whose on_done has not run
  std::vector<Completion> draining_;
  int dispatch_depth_ = 0;
  bool in_curl_ = false;
  bool drain_posted_ = false;
  bool closing_ = false;             // no more user callbacks
  bool shutdown_requested_ = false;  // close() inside curl: shut down once curl returns
  bool shut_down_ = false;
};

ClientCore::ClientCore(asio::io_context& io, ClientOptions options, std::size_t shard)
    : io_(io),
      options_(std::move(options)),
      timer_(io),
      shard_bits_(static_cast<RequestId>(shard) << kSlotBits),
      no_proxy_(!environment_names_a_proxy()) {
  ensure_curl_global_init();
  multi_ = make_multi_handle();
  CURLM* multi = multi_.get();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, static_cast<curl_socket_callback>(&socket_callback));
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, static_cast<void*>(this));
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, static_cast<curl_multi_timer_callback>(&timer_callback));
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, static_cast<void*>(this));
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, options_.http2 ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, std::max(0L, options_.max_connections_per_host));
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, std::max(0L, options_.max_total_connections));
}

ClientCore::~ClientCore() {
  closing_ = true;
  shutdown_now();
}

void ClientCore::close() {
  closing_ = true;
  // curl_multi_cleanup must not run inside a curl callback (on_data); the handler that called curl
  // holds this core alive and shuts it down when curl returns.
  if (in_curl_) {
    shutdown_requested_ = true;
    return;
  }
  shutdown_now();
}

void ClientCore::shutdown_now() noexcept {
  if (shut_down_) return;
  shut_down_ = true;
  closing_ = true;
  ++timer_generation_;
  timer_.cancel();
  for (auto& holder : slots_) {
    if (!holder || holder->state == TransferState::kFree) continue;
    Transfer& transfer = *holder;
    transfer.first_byte_timer.cancel();
    if (transfer.state == TransferState::kRunning)
      curl_multi_remove_handle(multi_.get(), transfer.easy.get());
    transfer.state = TransferState::kFree;
    transfer.id = 0;
    transfer.on_data = nullptr;
    transfer.on_done = nullptr;
  }
  in_flight_ = 0;
  completions_.clear();
  started_.clear();
  deferred_cancels_.clear();
  // Closes the cached connections through close_socket_callback, which still needs the watches.
  multi_.reset();
  for (std::size_t fd = 0; fd < watches_.size(); ++fd) {
    if (!watches_[fd]) continue;
    unwatch(*watches_[fd]);
    if (watches_[fd]->owned) ::close(static_cast<int>(fd));
  }
  watches_.clear();
  slots_.clear();
  idle_slots_.clear();
  empty_slots_.clear();
}

// ---------------------------------------------------------------------------------------------------------
// Transfers and their slots

ClientCore::Transfer& ClientCore::acquire_transfer() {
  if (!idle_slots_.empty()) {
    const std::uint32_t slot = idle_slots_.back();
    idle_slots_.pop_back();
    return *slots_[slot];
  }
  std::uint32_t slot = 0;
  if (!empty_slots_.empty()) {
    slot = empty_slots_.back();
    empty_slots_.pop_back();
  } else {
    if (slots_.size() > kSlotMask) throw std::bad_alloc();
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  try {
    slots_[slot] = make_transfer(slot);
  } catch (...) {
    empty_slots_.push_back(slot);
    throw;
  }
  return *slots_[slot];
}

std::unique_ptr<ClientCore::Transfer> ClientCore::make_transfer(std::uint32_t slot) {
  auto transfer = std::make_unique<Transfer>(io_, *this, slot);
  transfer->easy = make_easy_handle();
  CURL* easy = transfer->easy.get();
  CURLcode rc = CURLE_OK;
  const auto check = [&rc](CURLcode result) {
    if (rc == CURLE_OK) rc = result;
  };
  check(curl_easy_setopt(easy, CURLOPT_PRIVATE, static_cast<void*>(transfer.get())));
  check(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
  check(curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L));
  check(curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L));
  check(curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 0L));
  check(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L));
  check(curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                         options_.http2 ? long{CURL_HTTP_VERSION_2TLS} : long{CURL_HTTP_VERSION_1_1}));
  check(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
  check(curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str()));
  check(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, static_cast<curl_write_callback>(&header_callback)));
  check(curl_easy_setopt(easy, CURLOPT_HEADERDATA, static_cast<void*>(transfer.get())));
  check(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, static_cast<curl_write_callback>(&write_callback)));
  check(curl_easy_setopt(easy, CURLOPT_WRITEDATA, static_cast<void*>(transfer.get())));
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION,
                         static_cast<curl_opensocket_callback>(&open_socket_callback)));
  check(curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, static_cast<void*>(this)));
  check(curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                         static_cast<curl_closesocket_callback>(&close_socket_callback)));
  check(curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, static_cast<void*>(this)));
  check(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error_buffer.data()));
  check(curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                         static_cast<curl_off_t>(std::min<std::size_t>(
                             options_.max_response_bytes, std::numeric_limits<curl_off_t>::max()))));
  check(curl_easy_setopt(easy, CURLOPT_VERBOSE, options_.verbose ? 1L : 0L));
  if (no_proxy_) check(curl_easy_setopt(easy, CURLOPT_PROXY, ""));
  check(curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, options_.receive_buffer_bytes));
  if (rc != CURLE_OK) throw std::bad_alloc();
  return transfer;
}

void ClientCore::release_slot(Transfer& transfer) {
  const std::uint32_t slot = transfer.slot;
  // Destroying a transfer inside a curl callback could pull an easy handle from under curl; trim later.
  if (idle_slots_.size() < options_.max_idle_handles || in_curl_) {
    idle_slots_.push_back(slot);
  } else {
    slots_[slot].reset();
    empty_slots_.push_back(slot);
  }
}

ClientCore::Transfer* ClientCore::find(RequestId id) noexcept {
  const auto slot = static_cast<std::size_t>(id & kSlotMask);
  if (id == 0 || slot >= slots_.size() || !slots_[slot]) return nullptr;
  Transfer* transfer = slots_[slot].get();
  return transfer->id == id && transfer->state != TransferState::kFree ? transfer : nullptr;
}

RequestId ClientCore::start(Request request, Client::DataHandler on_data, Client::DoneHandler on_done) {
  if (closing_) return 0;
  Transfer& transfer = acquire_transfer();
  if (++serial_ == 0) serial_ = 1;
  transfer.id = (RequestId{serial_} << kSerialShift) | shard_bits_ | transfer.slot;
  transfer.state = TransferState::kStarted;
  transfer.request = std::move(request);
  transfer.on_data = std::move(on_data);
  transfer.on_done = std::move(on_done);
  transfer.response = Response{};
  transfer.received_bytes = 0;
  transfer.got_first_byte = false;
  transfer.cancel_requested = false;
  transfer.started_at = Clock::now();
  ++in_flight_;
  const RequestId id = transfer.id;
  const char* invalid = nullptr;
  try {
    invalid = configure(transfer);
  } catch (...) {
    transfer.state = TransferState::kFree;
    transfer.id = 0;
    transfer.on_data = nullptr;
    transfer.on_done = nullptr;
    --in_flight_;
    release_slot(transfer);
    throw;
  }
  if (invalid != nullptr) {
    complete(transfer, TransportError::kOther, invalid);
    return id;
  }
  arm_first_byte_timer(transfer);
  if (in_curl_) {
    started_.push_back(id);
  } else {
    add_to_multi(transfer);
  }
  return id;
}

const char* ClientCore::configure(Transfer& transfer) {
  CURL* easy = transfer.easy.get();
  const Request& request = transfer.request;
  for (const auto& [name, value] : request.headers) {
    if (!valid_header(name, value)) return "invalid request header (empty name, ':' in name or a line break)";
  }
  CURLcode rc = CURLE_OK;
  const auto check = [&rc](CURLcode result) {
    if (rc == CURLE_OK) rc = result;
  };
  check(curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()));
  if (request.method == "HEAD") {
    check(curl_easy_setopt(easy, CURLOPT_NOBODY, 1L));
    check(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, static_cast<char*>(nullptr)));
  } else if (request.method == "GET" && request.body.empty()) {
    check(curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L));
    check(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, static_cast<char*>(nullptr)));
  } else {
    check(curl_easy_setopt(easy, CURLOPT_NOBODY, 0L));
    check(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size())));
    check(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data()));
    check(curl_easy_setopt(
        easy, CURLOPT_CUSTOMREQUEST,
        request.method == "POST" ? static_cast<const char*>(nullptr) : request.method.c_str()));
  }
  update_header_list(transfer);
  check(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.header_slist.get()));
  check(curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH,
                         request.unix_socket_path.empty() ? static_cast<const char*>(nullptr)
                                                          : request.unix_socket_path.c_str()));
  check(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(std::max<std::int64_t>(0, request.timeouts.connect.count()))));
  check(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                         static_cast<long>(std::max<std::int64_t>(0, request.timeouts.total.count()))));
  if (options_.http2) {
    // Waiting for a pending connection to learn whether it multiplexes saves thousands of TLS handshakes
    // when a burst starts; plain http never upgrades to HTTP/2 here, so it does not wait.
    const bool tls = request.url.size() >= 8 && request.url.compare(0, 8, "https://") == 0;
    check(curl_easy_setopt(easy, CURLOPT_PIPEWAIT, tls ? 1L : 0L));
  }
  transfer.error_buffer[0] = '\0';
  if (rc == CURLE_OUT_OF_MEMORY) throw std::bad_alloc();
  return rc == CURLE_OK ? nullptr : curl_easy_strerror(rc);
}

void ClientCore::update_header_list(Transfer& transfer) {
  HeaderList& headers = transfer.request.headers;
  // Most requests of a pipeline repeat the same headers; reusing the slist saves one allocation per header.
  if (transfer.header_slist && headers == transfer.header_slist_source) return;
  SlistHandle list;
  std::string line;
  for (const auto& [name, value] : headers) {
    line.assign(name);
    if (value.empty()) {
      line += ';';  // curl's syntax for a header with an empty value
    } else {
      line += ": ";
      line += value;
    }
    append(list, line.c_str());
  }
  // A 100-continue round trip costs a second for servers that ignore it; curl's form type is wrong for JSON.
  if (find_header(headers, "Expect") == nullptr) append(list, "Expect:");
  if (find_header(headers, "Content-Type") == nullptr) append(list, "Content-Type:");
  transfer.header_slist = std::move(list);
  transfer.header_slist_source = std::move(headers);
}

void ClientCore::arm_first_byte_timer(Transfer& transfer) {
  if (transfer.request.timeouts.first_byte.count() <= 0) return;
  transfer.first_byte_timer.expires_after(transfer.request.timeouts.first_byte);
  transfer.first_byte_timer.async_wait([weak = weak_from_this(), id = transfer.id](const ErrorCode& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->on_first_byte_timeout(id);
  });
}

void ClientCore::add_to_multi(Transfer& transfer) {
  transfer.state = TransferState::kRunning;
  const CURLMcode rc = curl_multi_add_handle(multi_.get(), transfer.easy.get());
  if (rc != CURLM_OK) {
    transfer.state = TransferState::kStarted;
    complete(transfer, TransportError::kOther,
             std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
}

void ClientCore::cancel(RequestId id) {
  Transfer* transfer = find(id);
  if (transfer == nullptr || closing_) return;
  if (transfer->state == TransferState::kRunning && in_curl_) {
    // The multi handle cannot be changed from inside its callbacks: the transfer's callbacks abort it
    // and after_curl removes what is left.
    if (!transfer->cancel_requested) {
      transfer->cancel_requested = true;
      deferred_cancels_.push_back(id);
    }
    return;
  }
  complete(*transfer, TransportError::kCancelled, "cancelled");
}

// ---------------------------------------------------------------------------------------------------------
// Outcomes

void ClientCore::collect_info(Transfer& transfer) noexcept {
  CURL* easy = transfer.easy.get();
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = status;
  long http_version = 0;
  curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &http_version);
  transfer.response.http_version = major_http_version(http_version);
}

void ClientCore::on_curl_done(Transfer& transfer, CURLcode code) {
  collect_info(transfer);
  Response& response = transfer.response;
  if (transfer.cancel_requested) {
    response.error = TransportError::kCancelled;
    response.error_message = "cancelled";
  } else if (response.error != TransportError::kNone) {
    // Decided by a callback: response too large, on_data threw, out of memory.
  } else if (code == CURLE_FILESIZE_EXCEEDED) {
    response.error = TransportError::kOther;
    response.error_message =
        "response exceeds max_response_bytes (" + std::to_string(options_.max_response_bytes) + ")";
  } else if (code != CURLE_OK) {
    curl_off_t pretransfer_us = 0;
    curl_easy_getinfo(transfer.easy.get(), CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
    response.error = classify_curl_error(code, transfer.got_first_byte || pretransfer_us > 0);
    response.error_message =
        transfer.error_buffer[0] != '\0' ? transfer.error_buffer.data() : curl_easy_strerror(code);
  }
  curl_multi_remove_handle(multi_.get(), transfer.easy.get());
  finish(transfer);
}

void ClientCore::complete(Transfer& transfer, TransportError error, std::string message) {
  if (transfer.state == TransferState::kRunning) {
    collect_info(transfer);
    curl_multi_remove_handle(multi_.get(), transfer.easy.get());
  }
  transfer.response.error = error;
  transfer.response.error_message = std::move(message);
  finish(transfer);
}

void ClientCore::finish(Transfer& transfer) {
  transfer.first_byte_timer.cancel();
  transfer.response.total_time =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - transfer.started_at);
  completions_.push_back(Completion{std::move(transfer.on_done), std::move(transfer.response)});
  transfer.on_data = nullptr;
  transfer.on_done = nullptr;
  transfer.request = Request{};  // drop the body (and its pointer in curl) now rather than on reuse
  transfer.state = TransferState::kFree;
  transfer.id = 0;
  --in_flight_;
  release_slot(transfer);
  ensure_drain();
}

void ClientCore::note_first_byte(Transfer& transfer) {
  if (transfer.got_first_byte) return;
  transfer.got_first_byte = true;
  transfer.response.time_to_first_byte =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - transfer.started_at);
  transfer.first_byte_timer.cancel();
}

bool ClientCore::charge(Transfer& transfer, std::size_t bytes) {
  transfer.received_bytes += bytes;
  if (transfer.received_bytes <= options_.max_response_bytes) return true;
  transfer.response.error = TransportError::kOther;
  transfer.response.error_message =
      "response exceeds max_response_bytes (" + std::to_string(options_.max_response_bytes) + ")";
  return false;
}

bool ClientCore::on_header(Transfer& transfer, std::string_view line) {
  if (closing_ || transfer.cancel_requested) return false;
  note_first_byte(transfer);
  if (!charge(transfer, line.size())) return false;
  HeaderList& headers = transfer.response.headers;
  if (line.substr(0, 5) == "HTTP/") {
    headers.clear();  // a new response (after 1xx): only the final one's headers count
    return true;
  }
  line = trim(line);
  if (line.empty()) return true;
  if (line.front() == ' ' || line.front() == '\t') {
    if (!headers.empty()) {  // obsolete line folding
      headers.back().second += ' ';
      headers.back().second += trim(line);
    }
    return true;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return true;
  headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  return true;
}

bool ClientCore::on_body(Transfer& transfer, std::string_view data) {
  if (closing_ || transfer.cancel_requested) return false;
  note_first_byte(transfer);
  if (!charge(transfer, data.size())) return false;
  if (!transfer.on_data) {
    std::string& body = transfer.response.body;
    if (body.empty()) {
      curl_off_t length = -1;
      curl_easy_getinfo(transfer.easy.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
      if (length > 0)
        body.reserve(std::min<std::size_t>(static_cast<std::size_t>(length), options_.max_response_bytes));
    }
    body.append(data);
    return true;
  }
  try {
    transfer.on_data(data);
  } catch (const std::exception& e) {
    transfer.response.error = TransportError::kOther;
    transfer.response.error_message = std::string("on_data threw: ") + e.what();
    return false;
  } catch (...) {
    transfer.response.error = TransportError::kOther;
    transfer.response.error_message = "on_data threw";
    return false;
  }
  // on_data may have cancelled this request or destroyed the Client.
  return !closing_ && !transfer.cancel_requested;
}

// ---------------------------------------------------------------------------------------------------------
// Driving curl

void ClientCore::run_curl(curl_socket_t fd, int events) {
  in_curl_ = true;
  int running = 0;
  curl_multi_socket_action(multi_.get(), fd, events, &running);
  in_curl_ = false;
}

// Work that has to wait until curl has returned. False when the core has shut down.
bool ClientCore::after_curl() {
  if (shutdown_requested_) {
    shutdown_now();
    return false;
  }
  read_completed();
  for (const RequestId id : deferred_cancels_) {
    if (Transfer* transfer = find(id); transfer != nullptr && transfer->state == TransferState::kRunning) {
      complete(*transfer, TransportError::kCancelled, "cancelled");
    }
  }
  deferred_cancels_.clear();
  for (const RequestId id : started_) {
    if (Transfer* transfer = find(id); transfer != nullptr && transfer->state == TransferState::kStarted) {
      add_to_multi(*transfer);
    }
  }
  started_.clear();
  return true;
}

void ClientCore::read_completed() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_.get(), &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    const CURLcode code = message->data.result;
    void* transfer = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
    on_curl_done(*static_cast<Transfer*>(transfer), code);
  }
}

void ClientCore::on_first_byte_timeout(RequestId id) {
  if (closing_) return;
  Transfer* transfer = find(id);
  if (transfer == nullptr || transfer->got_first_byte) return;
  DispatchScope scope(*this);
  complete(*transfer, TransportError::kTimeoutFirstByte,
           "no response within " + std::to_string(transfer->request.timeouts.first_byte.count()) + " ms");
  drain();
}

int ClientCore::socket_callback(CURL* /*easy*/, curl_socket_t fd, int what, void* userp,
                                void* /*socketp*/) noexcept {
  try {
    return static_cast<ClientCore*>(userp)->on_curl_socket(fd, what);
  } catch (...) {
    return -1;  // curl fails the transfers of this multi handle rather than hanging them
  }
}

int ClientCore::on_curl_socket(curl_socket_t fd, int what) {
  SocketWatch& watched = watch(fd);
  if (what == CURL_POLL_REMOVE) {
    // An owned socket stays registered with the reactor until close_socket_callback; others may be closed
    // by curl right after this call, so they are released now.
    if (watched.owned) {
      pause_watch(watched);
    } else {
      unwatch(watched);
    }
    return 0;
  }
  if (closing_) return 0;
  watched.wanted = what;
  if (watched.generation == 0) {
    if (!watched.descriptor) {
      ErrorCode ec;
      watched.descriptor.emplace(io_);
      watched.descriptor->assign(fd, ec);
      if (ec) {
        watched.descriptor.reset();
        return -1;
      }
    }
    watched.generation = ++watch_generation_;
  }
  arm(fd, watched);
  return 0;
}

void ClientCore::arm(curl_socket_t fd, SocketWatch& watched) {
  const auto arm_one = [&](asio::posix::descriptor_base::wait_type type, int direction) {
    watched.descriptor->async_wait(
        type, [weak = weak_from_this(), fd, generation = watched.generation, direction](const ErrorCode& ec) {
          if (ec == asio::error::operation_aborted) return;
          if (auto self = weak.lock()) self->on_socket_ready(fd, generation, direction, ec);
        });
  };
  if ((watched.wanted & CURL_POLL_IN) != 0 && !watched.read_pending) {
    watched.read_pending = true;
    arm_one(asio::posix::descriptor_base::wait_read, CURL_CSELECT_IN);
  }
  if ((watched.wanted & CURL_POLL_OUT) != 0 && !watched.write_pending) {
    watched.write_pending = true;
    arm_one(asio::posix::descriptor_base::wait_write, CURL_CSELECT_OUT);
  }
}

void ClientCore::on_socket_ready(curl_socket_t fd, std::uint64_t generation, int direction,
                                 const ErrorCode& ec) {
  if (closing_) return;
  SocketWatch* watched = find_watch(fd);
  // A wait from an earlier registration of this fd number (curl closed the socket and opened another).
  if (watched == nullptr || watched->generation != generation) return;
  const int wanted_bit = direction == CURL_CSELECT_IN ? CURL_POLL_IN : CURL_POLL_OUT;
  (direction == CURL_CSELECT_IN ? watched->read_pending : watched->write_pending) = false;
  if ((watched->wanted & wanted_bit) == 0) return;
  DispatchScope scope(*this);
  run_curl(fd, ec ? CURL_CSELECT_ERR : direction);
  if (!after_curl()) return;
  // curl reports only changes of interest: if it still wants this direction, wait again.
  if (watched->generation == generation) arm(fd, *watched);
  drain();
}

int ClientCore::timer_callback(CURLM* /*multi*/, long timeout_ms, void* userp) noexcept {
  try {
    static_cast<ClientCore*>(userp)->set_curl_timer(timeout_ms);
    return 0;
  } catch (...) {
    return -1;
  }
}

void ClientCore::set_curl_timer(long timeout_ms) {
  ++timer_generation_;
  if (closing_ || timeout_ms < 0) {
    timer_.cancel();
    return;
  }
  // curl_multi_socket_action must not be called from inside this callback, so even 0 goes through Asio.
  timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  timer_.async_wait([weak = weak_from_this(), generation = timer_generation_](const ErrorCode& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->on_curl_timer(generation);
  });
}

void ClientCore::on_curl_timer(std::uint64_t generation) {
  if (closing_ || generation != timer_generation_) return;
  DispatchScope scope(*this);
  run_curl(CURL_SOCKET_TIMEOUT, 0);
  if (!after_curl()) return;
  drain();
}

curl_socket_t ClientCore::open_socket_callback(void* clientp, curlsocktype purpose,
                                               curl_sockaddr* address) noexcept {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  const int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  try {
    SocketWatch& watched = static_cast<ClientCore*>(clientp)->watch(fd);
    unwatch(watched);  // drop whatever an earlier, unannounced user of this fd number left behind
    watched.owned = true;
  } catch (...) {
    ::close(fd);
    return CURL_SOCKET_BAD;
  }
  return fd;
}

int ClientCore::close_socket_callback(void* clientp, curl_socket_t fd) noexcept {
  if (SocketWatch* watched = static_cast<ClientCore*>(clientp)->find_watch(fd)) {
    // Deregister from the reactor before the fd number can be reused by a new socket.
    unwatch(*watched);
    watched->owned = false;
  }
  return ::close(fd);
}

ClientCore::SocketWatch& ClientCore::watch(curl_socket_t fd) {
  const auto index = static_cast<std::size_t>(fd);
  if (index >= watches_.size()) watches_.resize(std::max<std::size_t>(index + 1, watches_.size() * 2));
  auto& holder = watches_[index];
  if (!holder) holder = std::make_unique<SocketWatch>();
  return *holder;
}

ClientCore::SocketWatch* ClientCore::find_watch(curl_socket_t fd) noexcept {
  const auto index = static_cast<std::size_t>(fd);
  return fd >= 0 && index < watches_.size() ? watches_[index].get() : nullptr;
}

void ClientCore::pause_watch(SocketWatch& watched) noexcept {
  if (watched.descriptor && (watched.read_pending || watched.write_pending)) {
    ErrorCode ignored;
    watched.descriptor->cancel(ignored);
  }
  watched.generation = 0;
  watched.wanted = 0;
  watched.read_pending = false;
  watched.write_pending = false;
}

void ClientCore::unwatch(SocketWatch& watched) noexcept {
  pause_watch(watched);
  if (watched.descriptor) {
    // release(), not close(): the fd belongs to curl (or to close_socket_callback).
    watched.descriptor->release();
    watched.descriptor.reset();
  }
}

std::size_t ClientCore::header_callback(char* data, std::size_t size, std::size_t count,
                                        void* userp) noexcept {
  auto& transfer = *static_cast<Transfer*>(userp);
  const std::size_t bytes = size * count;
  try {
    return transfer.core->on_header(transfer, std::string_view(data, bytes)) ? bytes : 0;
  } catch (...) {
    transfer.response.error = TransportError::kOther;
    transfer.response.error_message = "out of memory";
    return 0;
  }
}

std::size_t ClientCore::write_callback(char* data, std::size_t size, std::size_t count,
                                       void* userp) noexcept {
  auto& transfer = *static_cast<Transfer*>(userp);
  const std::size_t bytes = size * count;
  try {
    return transfer.core->on_body(transfer, std::string_view(data, bytes)) ? bytes : 0;
  } catch (...) {
    transfer.response.error = TransportError::kOther;
    transfer.response.error_message = "out of memory";
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------------------
// User callbacks

// Completions are delivered from handlers after curl has returned (never from inside curl, start or
// cancel), so on_done may start, cancel or destroy freely.
void ClientCore::ensure_drain() {
  if (dispatch_depth_ == 0) post_drain();
}

void ClientCore::post_drain() {
  if (drain_posted_) return;
  drain_posted_ = true;
  asio::post(io_, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->drain_posted_ = false;
    if (self->closing_) return;
    DispatchScope scope(*self);
    self->drain();
  });
}

void ClientCore::drain() {
  while (!completions_.empty() && !closing_) {
    draining_.swap(completions_);
    std::size_t next = 0;
    try {
      while (next < draining_.size()) {
        Completion& completion = draining_[next++];
        const Client::DoneHandler on_done = std::move(completion.on_done);
        if (on_done) on_done(std::move(completion.response));
        if (closing_) break;
      }
    } catch (...) {
      if (!closing_) {
        // Keep the undelivered outcomes, in order, for a later drain.
        completions_.insert(completions_.begin(),
                            std::make_move_iterator(draining_.begin() + static_cast<std::ptrdiff_t>(next)),
                            std::make_move_iterator(draining_.end()));
        post_drain();
      }
      draining_.clear();
      throw;
    }
    draining_.clear();
  }
}

}  // namespace detail

// -------------------------------------------------------------------------------------------------------------

Client::Client(boost::asio::io_context& io, ClientOptions options) {
  // Connection limits hold per libcurl multi handle: with one, one shard keeps them exact.
  std::size_t shards = std::clamp<std::size_t>(options.shards, 1, detail::kMaxShards);
  if (options.max_connections_per_host > 0 || options.max_total_connections > 0) shards = 1;
  requests_per_shard_ = std::max<std::size_t>(1, options.requests_per_shard);
  // A shard keeps at least the idle slots of twice its fill, so a busy shard does not create and
  // free easy handles as its load moves around; the total still follows max_idle_handles.
  options.max_idle_handles = std::max((options.max_idle_handles + shards - 1) / shards,
                                      std::min(options.max_idle_handles, 2 * requests_per_shard_));
  cores_.reserve(shards);
  for (std::size_t i = 0; i < shards; ++i)
    cores_.push_back(std::make_shared<detail::ClientCore>(io, options, i));
}

Client::~Client() {
  for (auto& core : cores_) core->close();
}

Client::RequestId Client::start(Request request, DataHandler on_data, DoneHandler on_done) {
  // The first shard with room, so that light traffic reuses the connections of a few shards; when
  // every shard is full, the least loaded one.
  detail::ClientCore* chosen = nullptr;
  std::size_t least = std::numeric_limits<std::size_t>::max();
  for (auto& core : cores_) {
    const std::size_t load = core->in_flight();
    if (load < requests_per_shard_) {
      chosen = core.get();
      break;
    }
    if (load < least) {
      least = load;
      chosen = core.get();
    }
  }
  return chosen->start(std::move(request), std::move(on_data), std::move(on_done));
}

void Client::cancel(RequestId id) {
  const std::size_t shard = detail::shard_of(id);
  if (shard < cores_.size()) cores_[shard]->cancel(id);
}

std::size_t Client::in_flight() const {
  std::size_t total = 0;
  for (const auto& core : cores_) total += core->in_flight();
  return total;
}

}  // namespace kafka_llm::http
