// ktm/net/grpc/grpc_transport.cpp: see grpc_transport.hpp.
#include "ktm/net/grpc/grpc_transport.hpp"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ktm/error.hpp"
#include "ktm/net/grpc/wire_proto.hpp"
#include "ktm_superior.grpc.pb.h"

namespace ktm::net {
namespace {

using tm::superior_message;
using clock_type = std::chrono::system_clock;

// A receiver attached for one TM, and how many deliveries to it are running.
struct receiver_entry {
  void* object = nullptr;
  void (*fn)(void*, const superior_message&) = nullptr;
  std::atomic<std::size_t> in_flight{0};
  std::mutex mutex;  // guards nothing; detach() waits on `idle` with it
  std::condition_variable idle;
};

// The entry whose receive() runs on this thread now (innermost), so that a
// detach() from inside receive() does not wait for itself.
thread_local const receiver_entry* delivering = nullptr;

// Everything arriving from one sender (one peer_link of one transport
// incarnation): delivered one batch at a time, never a seq below `next_seq`.
struct inbound_sender {
  std::mutex mutex;
  std::uint64_t next_seq = 0;
};

struct counters_impl {
  std::atomic<std::uint64_t> sent{0}, sent_local{0}, received{0}, send_failed{0}, lost{0},
      dropped_malformed{0}, dropped_unattached{0}, dropped_stale{0}, batches_sent{0};
};

std::uint64_t random_id() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// One peer address: its channel, its queue, and the thread that empties it.
struct peer_link {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<wire::superior_link::Stub> stub;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<superior_message> queue;
  const std::uint64_t sender_id = random_id();  // names this link's seqs to the receiver
  bool down = false;       // the last batch failed; send() checks the channel
  bool stopping = false;
  std::uint64_t next_seq = 1;
  grpc::ClientContext* in_call = nullptr;  // cancelled when stopping
  std::thread worker;
};

}  // namespace

struct grpc_transport::impl final : wire::superior_link::Service {
  explicit impl(grpc_transport_options o) : options(std::move(o)) { start_server(); }

  ~impl() override {
    if (server) server->Shutdown(clock_type::now() + options.rpc_timeout);
    std::vector<std::shared_ptr<peer_link>> all;
    {
      std::unique_lock lock(peers_mutex);
      for (auto& [address, link] : links) all.push_back(link);
      routes.clear();
      links.clear();
    }
    for (auto& link : all) stop(*link);
  }

  // ---- receiving ----

  void start_server() {
    if (options.listen_address.empty()) return;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(), &bound_port);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a port in use is an error
    builder.RegisterService(this);
    server = builder.BuildAndStart();
    if (!server || bound_port == 0) {
      server.reset();
      bound_port = 0;
      status = make_error_code(errc::invalid_argument);
    }
  }

  grpc::Status deliver(grpc::ServerContext*, const wire::batch* b, wire::ack* a) override {
    const auto n = static_cast<std::uint64_t>(b->messages_size());
    if (b->first_seq() > std::numeric_limits<std::uint64_t>::max() - n) {
      counts.dropped_malformed += n;
      return grpc::Status::OK;
    }
    const auto from = inbound_for(b->sender());
    std::lock_guard lock(from->mutex);
    std::uint32_t accepted = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t seq = b->first_seq() + i;
      if (seq < from->next_seq) {
        ++counts.dropped_stale;
        continue;
      }
      from->next_seq = seq + 1;
      const auto m = detail::from_wire(b->messages(static_cast<int>(i)));
      if (!m) {
        ++counts.dropped_malformed;
      } else if (deliver_here(*m, counts.received)) {
        ++accepted;
      } else {
        ++counts.dropped_unattached;
      }
    }
    a->set_accepted(accepted);
    return grpc::Status::OK;
  }

  std::shared_ptr<inbound_sender> inbound_for(std::uint64_t sender) {
    std::lock_guard lock(inbound_mutex);
    auto& s = inbound[sender];
    if (!s) s = std::make_shared<inbound_sender>();
    return s;
  }

  // Gives m to the receiver attached for m.to, counting it in `count` first;
  // false when there is none.
  bool deliver_here(const superior_message& m, std::atomic<std::uint64_t>& count) {
    std::shared_ptr<receiver_entry> e;
    {
      std::shared_lock lock(receivers_mutex);
      const auto it = receivers.find(m.to);
      if (it == receivers.end()) return false;
      e = it->second;
      e->in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    ++count;
    const receiver_entry* outer = delivering;
    delivering = e.get();
    e->fn(e->object, m);
    delivering = outer;
    // detach() waits for 0, or for 1 when called from inside a receive().
    if (e->in_flight.fetch_sub(1, std::memory_order_acq_rel) <= 2) {
      std::lock_guard lock(e->mutex);
      e->idle.notify_all();
    }
    return true;
  }

  // ---- sending ----

  std::shared_ptr<peer_link> link_for(const std::string& address) {
    auto& link = links[address];
    if (link) return link;
    link = std::make_shared<peer_link>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options.reconnect_min.count()));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options.reconnect_min.count()));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options.reconnect_max.count()));
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // this transport's own connections
    link->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    link->stub = wire::superior_link::NewStub(link->channel);
    link->channel->GetState(true);  // connect now, not at the first send
    link->worker = std::thread([this, l = link.get()] { run(*l); });
    return link;
  }

  std::error_code send(const superior_message& m) {
    if (deliver_here(m, counts.sent_local)) return {};
    std::shared_ptr<peer_link> link;
    {
      std::shared_lock lock(peers_mutex);
      const auto it = routes.find(m.to);
      if (it != routes.end()) link = it->second;
    }
    if (!link) return failed();
    std::lock_guard lock(link->mutex);
    if (link->down) {
      if (link->channel->GetState(true) != GRPC_CHANNEL_READY) return failed();
      link->down = false;
    }
    if (link->stopping || link->queue.size() >= options.max_queue) return failed();
    link->queue.push_back(m);
    if (link->queue.size() == 1) link->wake.notify_one();
    return {};
  }

  std::error_code failed() {
    ++counts.send_failed;
    return make_error_code(errc::disconnected);
  }

  // The sender thread of one peer: batches, in order, one call at a time.
  void run(peer_link& link) {
    wire::batch batch;
    batch.set_sender(link.sender_id);
    for (;;) {
      std::size_t n = 0;
      grpc::ClientContext context;
      {
        std::unique_lock lock(link.mutex);
        link.wake.wait(lock, [&] { return link.stopping || !link.queue.empty(); });
        if (link.stopping) return;
        batch.clear_messages();
        batch.set_first_seq(link.next_seq);
        for (; n < options.max_batch && !link.queue.empty(); ++n) {
          detail::to_wire(link.queue.front(), *batch.add_messages());
          link.queue.pop_front();
        }
        link.next_seq += n;
        link.in_call = &context;
      }
      context.set_deadline(clock_type::now() + options.rpc_timeout);
      context.set_wait_for_ready(false);
      wire::ack ack;
      const grpc::Status s = link.stub->deliver(&context, batch, &ack);
      std::lock_guard lock(link.mutex);
      link.in_call = nullptr;
      if (s.ok()) {
        counts.sent += n;
        ++counts.batches_sent;
      } else {
        // The peer is away: what is queued would fail the same way.
        counts.lost += n + link.queue.size();
        link.queue.clear();
        link.down = true;
      }
    }
  }

  void stop(peer_link& link) {
    {
      std::lock_guard lock(link.mutex);
      link.stopping = true;
      if (link.in_call) link.in_call->TryCancel();
      counts.lost += link.queue.size();
      link.queue.clear();
      link.wake.notify_all();
    }
    if (link.worker.joinable()) link.worker.join();
  }

  grpc_transport_options options;
  counters_impl counts;

  std::unique_ptr<grpc::Server> server;
  int bound_port = 0;
  std::error_code status;

  std::shared_mutex receivers_mutex;
  std::unordered_map<guid, std::shared_ptr<receiver_entry>> receivers;

  std::mutex inbound_mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<inbound_sender>> inbound;

  std::shared_mutex peers_mutex;
  std::unordered_map<guid, std::shared_ptr<peer_link>> routes;
  std::unordered_map<std::string, std::shared_ptr<peer_link>> links;
};

grpc_transport::grpc_transport(grpc_transport_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}
grpc_transport::~grpc_transport() = default;
grpc_transport::grpc_transport(grpc_transport&&) noexcept = default;
grpc_transport& grpc_transport::operator=(grpc_transport&&) noexcept = default;

std::error_code grpc_transport::status() const noexcept { return impl_->status; }
int grpc_transport::port() const noexcept { return impl_->bound_port; }
std::string grpc_transport::address() const { return "127.0.0.1:" + std::to_string(impl_->bound_port); }

std::error_code grpc_transport::add_peer(const guid& tm, const std::string& address) {
  if (address.empty()) return make_error_code(errc::invalid_argument);
  std::unique_lock lock(impl_->peers_mutex);
  impl_->routes[tm] = impl_->link_for(address);
  return {};
}

void grpc_transport::remove_peer(const guid& tm) {
  std::unique_lock lock(impl_->peers_mutex);
  impl_->routes.erase(tm);
}

std::error_code grpc_transport::send(const tm::superior_message& m) { return impl_->send(m); }

void grpc_transport::attach_erased(const guid& id, void* receiver, receive_fn fn) {
  auto e = std::make_shared<receiver_entry>();
  e->object = receiver;
  e->fn = fn;
  std::unique_lock lock(impl_->receivers_mutex);
  impl_->receivers[id] = std::move(e);
}

void grpc_transport::detach(const guid& id) {
  std::shared_ptr<receiver_entry> e;
  {
    std::unique_lock lock(impl_->receivers_mutex);
    const auto it = impl_->receivers.find(id);
    if (it == impl_->receivers.end()) return;
    e = std::move(it->second);
    impl_->receivers.erase(it);
  }
  const std::size_t own = delivering == e.get() ? 1 : 0;
  std::unique_lock lock(e->mutex);
  e->idle.wait(lock, [&] { return e->in_flight.load(std::memory_order_acquire) <= own; });
}

grpc_transport_counters grpc_transport::counters() const noexcept {
  const auto& c = impl_->counts;
  grpc_transport_counters r;
  r.sent = c.sent;
  r.sent_local = c.sent_local;
  r.received = c.received;
  r.send_failed = c.send_failed;
  r.lost = c.lost;
  r.dropped_malformed = c.dropped_malformed;
  r.dropped_unattached = c.dropped_unattached;
  r.dropped_stale = c.dropped_stale;
  r.batches_sent = c.batches_sent;
  return r;
}

}  // namespace ktm::net
