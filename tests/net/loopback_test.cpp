// Two grpc_transports in one process, talking over loopback TCP.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>

#include "ktm/error.hpp"
#include "ktm/net/grpc/grpc_transport.hpp"
#include "ktm/net/grpc/wire_codec.hpp"
#include "ktm_superior.grpc.pb.h"
#include "tests/net/net_fixtures.hpp"

#include <grpcpp/grpcpp.h>

using namespace ktm;
using namespace ktm::net;
using test::collector;
using test::message;
using ktm::tm::superior_message_kind;

namespace {

// Two transports that know each other, a TM on each.
struct pair_of_transports {
  grpc_transport a, b;
  const guid tm_a = guid::generate(), tm_b = guid::generate();
  collector at_a, at_b;

  pair_of_transports() {
    REQUIRE(!a.status());
    REQUIRE(!b.status());
    REQUIRE(a.port() != 0);
    REQUIRE(b.port() != 0);
    REQUIRE(!a.add_peer(tm_b, b.address()));
    REQUIRE(!b.add_peer(tm_a, a.address()));
    a.attach(tm_a, at_a);
    b.attach(tm_b, at_b);
  }
  ~pair_of_transports() {
    a.detach(tm_a);
    b.detach(tm_b);
  }
};

// Sends until the transport accepts (a channel may still be connecting).
template <class T>
std::error_code send_within(T& t, const ktm::tm::superior_message& m, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  std::error_code ec;
  while ((ec = t.send(m)) && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return ec;
}

// Waits until pred() holds (the sender counts a batch once its call returns,
// which may be after the receiver has seen it); bounded, never measured.
template <class Pred>
bool eventually(Pred pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pred() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pred();
}

}  // namespace

TEST_CASE("a message sent to a peer's TM reaches the receiver attached there; unchanged") {
  pair_of_transports p;
  auto m = message(superior_message_kind::outcome, p.tm_a, p.tm_b, 42);
  m.outcome = ktm::tm::transaction_outcome::committed;
  REQUIRE(!send_within(p.a, m));
  REQUIRE(p.at_b.wait_for_count(1));
  CHECK(p.at_b.messages().front() == m);
  CHECK(p.at_a.messages().empty());
  CHECK(eventually([&] { return p.b.counters().received == 1; }));
  CHECK(eventually([&] { return p.a.counters().sent == 1; }));
}

TEST_CASE("a receiver may answer from inside receive(): the answer comes back") {
  pair_of_transports p;
  test::echo<grpc_transport> answer(p.b);
  const guid tm_echo = guid::generate();
  p.b.attach(tm_echo, answer);
  REQUIRE(!p.a.add_peer(tm_echo, p.b.address()));
  const auto m = message(superior_message_kind::prepare, p.tm_a, tm_echo, 5);
  REQUIRE(!send_within(p.a, m));
  REQUIRE(p.at_a.wait_for_uow(m.uow));
  const auto reply = p.at_a.messages().front();
  CHECK(reply.kind == superior_message_kind::prepare_complete);
  CHECK(reply.from == tm_echo);
  CHECK(reply.to == p.tm_a);
  p.b.detach(tm_echo);
}

TEST_CASE("messages between one pair of TMs arrive in the order they were sent") {
  pair_of_transports p;
  REQUIRE(!send_within(p.a, message(superior_message_kind::prepare, p.tm_a, p.tm_b, 0)));
  constexpr std::uint64_t n = 5000;
  for (std::uint64_t i = 1; i <= n; ++i) REQUIRE(!p.a.send(message(superior_message_kind::commit, p.tm_a, p.tm_b, i)));
  REQUIRE(p.at_b.wait_for_count(n + 1));
  const auto got = p.at_b.messages();
  for (std::uint64_t i = 0; i <= n; ++i) REQUIRE(got[i].clock == i);
  CHECK(eventually([&] { return p.a.counters().sent == n + 1; }));
}

TEST_CASE("a TM attached to the sending transport gets its messages without the network") {
  grpc_transport t(grpc_transport_options{.listen_address = ""});
  CHECK(t.port() == 0);
  collector c;
  const guid tm = guid::generate();
  t.attach(tm, c);
  const auto m = message(superior_message_kind::commit, guid::generate(), tm, 1);
  REQUIRE(!t.send(m));
  REQUIRE(c.messages().size() == 1);  // delivered before send() returned
  CHECK(c.messages().front() == m);
  CHECK(t.counters().sent_local == 1);
  CHECK(t.counters().sent == 0);
  t.detach(tm);
}

TEST_CASE("a message to a TM that is neither attached nor a known peer fails with disconnected") {
  grpc_transport t;
  const auto ec = t.send(message(superior_message_kind::commit, guid::generate(), guid::generate()));
  CHECK(ec == make_error_code(errc::disconnected));
  CHECK(t.counters().send_failed == 1);
}

TEST_CASE("a message for a TM no receiver is attached for is dropped and counted") {
  pair_of_transports p;
  const guid nobody = guid::generate();
  REQUIRE(!p.a.add_peer(nobody, p.b.address()));
  REQUIRE(!send_within(p.a, message(superior_message_kind::commit, p.tm_a, nobody)));
  REQUIRE(!p.a.send(message(superior_message_kind::commit, p.tm_a, p.tm_b)));  // behind it, in order
  REQUIRE(p.at_b.wait_for_count(1));
  CHECK(p.b.counters().dropped_unattached == 1);
  CHECK(eventually([&] { return p.b.counters().received == 1; }));
}

TEST_CASE("a peer nobody listens for makes sends fail with disconnected; within bounded time") {
  int dead_port = 0;
  {
    grpc_transport gone;
    dead_port = gone.port();
  }
  grpc_transport t;
  const guid tm = guid::generate();
  REQUIRE(!t.add_peer(tm, "127.0.0.1:" + std::to_string(dead_port)));
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::error_code ec;
  while (!(ec = t.send(message(superior_message_kind::commit, guid::generate(), tm))) &&
         std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(ec == make_error_code(errc::disconnected));
}

TEST_CASE("a second transport cannot listen on a port in use") {
  grpc_transport first;
  grpc_transport second(first.address());
  CHECK(second.status() == make_error_code(errc::invalid_argument));
  CHECK(second.port() == 0);
}

TEST_CASE("detach waits for a receive() that is running for that TM") {
  pair_of_transports p;
  struct blocking {
    std::atomic<bool> entered{false}, release{false};
    void receive(const ktm::tm::superior_message&) {
      entered = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  } slow;
  const guid tm_slow = guid::generate();
  p.b.attach(tm_slow, slow);
  REQUIRE(!p.a.add_peer(tm_slow, p.b.address()));
  REQUIRE(!send_within(p.a, message(superior_message_kind::commit, p.tm_a, tm_slow)));
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!slow.entered && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(slow.entered);
  std::atomic<bool> detached{false};
  std::thread d([&] {
    p.b.detach(tm_slow);
    detached = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(detached);  // still inside receive()
  slow.release = true;
  d.join();
  CHECK(detached);
}

TEST_CASE("detach from inside the receiver's own receive() returns") {
  grpc_transport t(grpc_transport_options{.listen_address = ""});
  const guid tm = guid::generate();
  struct self_detaching {
    grpc_transport* t;
    guid id;
    int calls = 0;
    void receive(const ktm::tm::superior_message&) {
      ++calls;
      t->detach(id);
    }
  } r{&t, tm};
  t.attach(tm, r);
  REQUIRE(!t.send(message(superior_message_kind::commit, guid::generate(), tm)));
  CHECK(r.calls == 1);
  CHECK(t.send(message(superior_message_kind::commit, guid::generate(), tm)) == make_error_code(errc::disconnected));
}

TEST_CASE("malformed messages and replayed batches from the network are dropped and counted; never delivered") {
  pair_of_transports p;
  auto channel = grpc::CreateChannel(p.b.address(), grpc::InsecureChannelCredentials());
  auto stub = wire::superior_link::NewStub(channel);
  const auto good = message(superior_message_kind::commit, p.tm_a, p.tm_b, 9);
  const auto send_batch = [&](std::uint64_t first_seq, auto&& fill) {
    wire::batch b;
    b.set_sender(0x1234);
    b.set_first_seq(first_seq);
    fill(b);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    wire::ack ack;
    REQUIRE(stub->deliver(&ctx, b, &ack).ok());
    return ack.accepted();
  };
  const auto add_good = [&](wire::batch& b) { REQUIRE(b.add_messages()->ParseFromString(encode_wire(good))); };

  CHECK(send_batch(10, [&](wire::batch& b) {
          b.add_messages();  // kind 0, empty GUIDs
          add_good(b);
          b.mutable_messages(1)->set_kind(99);
          add_good(b);
          b.mutable_messages(2)->set_to("short");
          add_good(b);
          b.mutable_messages(3)->set_outcome(9);
        }) == 0);
  CHECK(p.b.counters().dropped_malformed == 4);
  CHECK(send_batch(5, add_good) == 0);   // older than what was seen from this sender
  CHECK(send_batch(13, add_good) == 0);  // a replay of the last seq
  CHECK(p.b.counters().dropped_stale == 2);
  CHECK(send_batch(std::numeric_limits<std::uint64_t>::max(), [&](wire::batch& b) {
          add_good(b);
          add_good(b);
        }) == 0);  // its seqs would wrap
  CHECK(send_batch(14, add_good) == 1);
  CHECK(p.at_b.messages().size() == 1);
  CHECK(eventually([&] { return p.b.counters().received == 1; }));
}

TEST_CASE("two addresses of one transport are two senders to it: neither's messages are dropped as stale") {
  pair_of_transports p;
  const guid tm_b2 = guid::generate();
  collector at_b2;
  p.b.attach(tm_b2, at_b2);
  REQUIRE(!p.a.add_peer(tm_b2, "ipv4:" + p.b.address()));  // another channel to the same server
  REQUIRE(!send_within(p.a, message(superior_message_kind::commit, p.tm_a, p.tm_b, 0)));
  REQUIRE(!send_within(p.a, message(superior_message_kind::commit, p.tm_a, tm_b2, 0)));
  constexpr std::uint64_t n = 500;
  for (std::uint64_t i = 1; i <= n; ++i) {
    REQUIRE(!p.a.send(message(superior_message_kind::commit, p.tm_a, p.tm_b, i)));
    REQUIRE(!p.a.send(message(superior_message_kind::commit, p.tm_a, tm_b2, i)));
  }
  REQUIRE(p.at_b.wait_for_count(n + 1));
  REQUIRE(at_b2.wait_for_count(n + 1));
  CHECK(p.b.counters().dropped_stale == 0);
  p.b.detach(tm_b2);
}
