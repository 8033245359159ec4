// A transport talking to another process (tests/net/echo_peer.cpp): the
// peer is killed with SIGKILL and restarted on the same port; the parent's
// transport restarts under a peer that stays up. Every wait is bounded; no
// wait is measured. KTM_NET_RESTARTS (default 3) sets the kill/restart cycles.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "ktm/error.hpp"
#include "ktm/net/grpc/grpc_transport.hpp"
#include "tests/net/child_process.hpp"
#include "tests/net/net_fixtures.hpp"

using namespace ktm;
using namespace ktm::net;
using namespace std::chrono_literals;
using test::child_process;
using test::collector;
using test::message;
using ktm::tm::superior_message_kind;

namespace {

const auto limit = 30s;  // a safety deadline for every wait; never reached when all is well

int restarts() {
  const char* v = std::getenv("KTM_NET_RESTARTS");
  return v ? std::atoi(v) : 3;
}

// echo_peer listening on `port` (0: any); returns the child and its port.
std::unique_ptr<child_process> start_echo(int port, const guid& echo_tm, const guid& parent_tm,
                                          const std::string& parent_address, int& bound) {
  auto child = std::make_unique<child_process>(
      test::runfile("tests/net/echo_peer"),
      std::vector<std::string>{std::to_string(port), echo_tm.to_string(), parent_tm.to_string(), parent_address});
  const auto line = child->read_line(limit);
  REQUIRE(line.has_value());
  REQUIRE(line->rfind("ready ", 0) == 0);
  bound = std::stoi(line->substr(6));
  REQUIRE(bound > 0);
  return child;
}

// Sends fresh prepares until one of them is answered; true when one was.
bool reaches(grpc_transport& t, collector& c, const guid& from, const guid& to) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    const auto m = message(superior_message_kind::prepare, from, to);
    if (!t.send(m) && c.wait_for_uow(m.uow, 500ms)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Sends until send() answers disconnected; true when it did.
bool sees_disconnected(grpc_transport& t, const guid& from, const guid& to) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    const auto ec = t.send(message(superior_message_kind::prepare, from, to));
    if (ec == make_error_code(errc::disconnected)) return true;
    REQUIRE(!ec);
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// This process's transport and TM, and an echo_peer child that answers it.
struct parent_and_echo {
  grpc_transport t;
  collector c;
  const guid parent_tm = guid::generate(), echo_tm = guid::generate();
  int port = 0;
  std::unique_ptr<child_process> child;

  parent_and_echo() {
    REQUIRE(!t.status());
    t.attach(parent_tm, c);
    child = start_echo(0, echo_tm, parent_tm, t.address(), port);
    REQUIRE(!t.add_peer(echo_tm, "127.0.0.1:" + std::to_string(port)));
    REQUIRE(reaches(t, c, parent_tm, echo_tm));
  }
  ~parent_and_echo() { t.detach(parent_tm); }
};

}  // namespace

TEST_CASE("messages to a TM in another process are answered; in order") {
  parent_and_echo p;
  auto& [t, c, parent_tm, echo_tm, port, child] = p;
  const std::size_t before = c.messages().size();
  constexpr std::uint64_t n = 1000;
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(!t.send(message(superior_message_kind::prepare, parent_tm, echo_tm, i)));
  REQUIRE(c.wait_for_count(before + n, limit));
  const auto got = c.messages();
  for (std::uint64_t i = 0; i < n; ++i) {
    REQUIRE(got[before + i].clock == i);
    REQUIRE(got[before + i].kind == superior_message_kind::prepare_complete);
    REQUIRE(got[before + i].from == echo_tm);
  }
}

TEST_CASE("a peer process killed with SIGKILL makes sends fail with disconnected; restarted on its port; it is reached again") {
  parent_and_echo p;
  auto& [t, c, parent_tm, echo_tm, port, child] = p;

  for (int cycle = 0; cycle < restarts(); ++cycle) {
    child->kill();
    REQUIRE(sees_disconnected(t, parent_tm, echo_tm));
    for (int i = 0; i < 5; ++i) {  // and keeps failing while the peer is away
      CHECK(t.send(message(superior_message_kind::prepare, parent_tm, echo_tm)) == make_error_code(errc::disconnected));
      std::this_thread::sleep_for(20ms);
    }

    int again = 0;
    child = start_echo(port, echo_tm, parent_tm, t.address(), again);
    REQUIRE(again == port);
    REQUIRE(reaches(t, c, parent_tm, echo_tm));
  }
  const auto k = t.counters();
  CHECK(k.send_failed >= static_cast<std::uint64_t>(5 * restarts()));
  CHECK(k.received >= static_cast<std::uint64_t>(1 + restarts()));
}

TEST_CASE("a transport restarted on its port under a peer that stayed up is answered again") {
  const guid parent_tm = guid::generate(), echo_tm = guid::generate();
  collector c;
  auto t = std::make_unique<grpc_transport>();
  REQUIRE(!t->status());
  const std::string parent_address = t->address();
  t->attach(parent_tm, c);
  int port = 0;
  auto child = start_echo(0, echo_tm, parent_tm, parent_address, port);
  const std::string child_address = "127.0.0.1:" + std::to_string(port);
  REQUIRE(!t->add_peer(echo_tm, child_address));
  REQUIRE(reaches(*t, c, parent_tm, echo_tm));

  for (int cycle = 0; cycle < restarts(); ++cycle) {
    t->detach(parent_tm);
    t.reset();
    t = std::make_unique<grpc_transport>(parent_address);
    REQUIRE(!t->status());
    t->attach(parent_tm, c);
    REQUIRE(!t->add_peer(echo_tm, child_address));
    REQUIRE(reaches(*t, c, parent_tm, echo_tm));  // the peer's channel found the new transport
  }
  t->detach(parent_tm);
}
