// benchmarks/transport_bench.cpp: superior-message round trips per second
// through grpc_transport over loopback TCP (//ktm/net/grpc).
//
// Two transports in one process, each with its own server and channel, so
// every message crosses loopback TCP and HTTP/2 as between two processes.
// A round trip: a sender thread sends a prepare to the echo TM behind the
// second transport, whose receiver answers with prepare_complete from
// inside receive(); the sender waits for that answer. 1 and 32 concurrent
// senders (Google Benchmark threads), each with one message outstanding.
//
// Baseline: one synchronous gRPC unary call per round trip, made directly
// with the generated stub against the same server (the request carries one
// message for a TM that does nothing; the reply is the call's ack). It is
// what a transport that called the peer synchronously for every message
// would cost.
//
// Build and run: bazel run --config=bench //benchmarks:transport_bench
// [-- --short] (0.1 s per cell instead of 2 s; CI runs it so)
#include <benchmark/benchmark.h>

#include <grpcpp/grpcpp.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

#include "ktm/net/grpc/grpc_transport.hpp"
#include "ktm/net/grpc/wire_codec.hpp"
#include "ktm_superior.grpc.pb.h"

namespace {

using ktm::guid;
using ktm::net::grpc_transport;
using ktm::tm::superior_message;
using ktm::tm::superior_message_kind;

constexpr int max_threads = 64;

// Where each sender thread's answers arrive: the clock carries the thread
// (high 32 bits) and its round-trip number (low 32 bits).
struct mailbox {
  std::mutex mutex;
  std::condition_variable answered;
  std::uint64_t last = 0;
};
std::array<mailbox, max_threads> mailboxes;

struct client_receiver {
  void receive(const superior_message& m) {
    auto& box = mailboxes[(m.clock >> 32) % max_threads];
    std::lock_guard lock(box.mutex);
    box.last = m.clock & 0xffffffffu;
    box.answered.notify_one();
  }
};

struct echo_receiver {
  grpc_transport* t;
  void receive(const superior_message& m) {
    superior_message r = m;
    r.kind = superior_message_kind::prepare_complete;
    r.from = m.to;
    r.to = m.from;
    (void)t->send(r);
  }
};

struct sink_receiver {
  void receive(const superior_message&) {}
};

// The two transports and their TMs, made once.
struct setup {
  grpc_transport client, server;
  const guid client_tm = guid::generate(), echo_tm = guid::generate(), sink_tm = guid::generate();
  client_receiver at_client;
  echo_receiver echo{&server};
  sink_receiver sink;

  setup() {
    if (client.status() || server.status()) {
      std::fprintf(stderr, "transport_bench: cannot listen on loopback\n");
      std::exit(1);
    }
    (void)client.add_peer(echo_tm, server.address());
    (void)server.add_peer(client_tm, client.address());
    client.attach(client_tm, at_client);
    server.attach(echo_tm, echo);
    server.attach(sink_tm, sink);
  }
};

setup& world() {
  static setup s;
  return s;
}

void BM_transport_round_trip(benchmark::State& state) {
  auto& w = world();
  const auto slot = static_cast<std::uint64_t>(state.thread_index());
  auto& box = mailboxes[slot];
  std::uint64_t n = 0, resends = 0, refused = 0;
  {
    std::lock_guard lock(box.mutex);
    box.last = 0;
  }
  superior_message m;
  m.kind = superior_message_kind::prepare;
  m.from = w.client_tm;
  m.to = w.echo_tm;
  m.uow = guid::generate();
  for (auto _ : state) {
    ++n;
    m.clock = (slot << 32) | (n & 0xffffffffu);
    for (;;) {
      if (w.client.send(m)) {  // still connecting, or the queue is full
        ++refused;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      std::unique_lock lock(box.mutex);
      if (box.answered.wait_for(lock, std::chrono::seconds(2), [&] { return box.last >= (n & 0xffffffffu); })) break;
      ++resends;  // lost: the protocol would resend too
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["resends"] = static_cast<double>(resends);
  state.counters["refused"] = static_cast<double>(refused);
}

void BM_baseline_sync_grpc_call(benchmark::State& state) {
  auto& w = world();
  thread_local auto stub = ktm::net::wire::superior_link::NewStub(
      grpc::CreateChannel(w.server.address(), grpc::InsecureChannelCredentials()));
  superior_message m;
  m.kind = superior_message_kind::prepare;
  m.from = w.client_tm;
  m.to = w.sink_tm;
  m.uow = guid::generate();
  // A sender id and seqs of this thread's own, so that the server delivers
  // every call (it drops seqs it has seen from a sender).
  thread_local const std::uint64_t sender = std::random_device{}() * 0x100000001ull + 1;
  thread_local std::uint64_t seq = 0;
  ktm::net::wire::batch b;
  b.set_sender(sender);
  if (!b.add_messages()->ParseFromString(ktm::net::encode_wire(m))) state.SkipWithError("encode");
  std::uint64_t failed = 0;
  for (auto _ : state) {
    b.set_first_seq(++seq);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    ktm::net::wire::ack ack;
    if (!stub->deliver(&ctx, b, &ack).ok() || ack.accepted() != 1) ++failed;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["failed"] = static_cast<double>(failed);
}

}  // namespace

// `--short` (or KTM_BENCH_SHORT set): each cell runs for 0.1 s instead of 2 s.
int main(int argc, char** argv) {
  bool short_mode = std::getenv("KTM_BENCH_SHORT") != nullptr;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--short") short_mode = true;
    else args.push_back(argv[i]);
  }
  const double min_time = short_mode ? 0.1 : 2.0;
  benchmark::RegisterBenchmark("BM_transport_round_trip", BM_transport_round_trip)
      ->Threads(1)->Threads(32)->UseRealTime()->MinTime(min_time);
  benchmark::RegisterBenchmark("BM_baseline_sync_grpc_call", BM_baseline_sync_grpc_call)
      ->Threads(1)->Threads(32)->UseRealTime()->MinTime(min_time);
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
