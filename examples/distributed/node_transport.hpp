// examples/distributed/node_transport.hpp: the transport of one node: a
// grpc_transport with the node's hooks around it.
//
//   ktm::net::grpc_transport wire("127.0.0.1:7000");
//   node_transport t(wire, crash);          // a superior_transport
//   t.before_delivery(f);                   // f(m) runs before the TM receives m
//   tm_type tm{t, ...};                     // the TM attaches itself through t
//
// send() passes send_before / send_after (crash_points.hpp) around the
// grpc_transport's send and counts the messages; a message for the attached
// TM passes recv_before / recv_after around its delivery, after the
// before_delivery hook (the node joins a transaction there when its
// superior's first PREPREPARE arrives). One receiver at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <system_error>

#include "examples/distributed/crash_points.hpp"
#include "ktm/net/grpc/grpc_transport.hpp"

namespace ktm::distributed {

class node_transport {
 public:
  node_transport(net::grpc_transport& wire, crash_points& cp) : wire_(&wire), cp_(&cp) {}
  node_transport(const node_transport&) = delete;
  node_transport& operator=(const node_transport&) = delete;

  // Set before any message can arrive; f returning false drops m.
  void before_delivery(std::function<bool(const tm::superior_message&)> f) { hook_ = std::move(f); }

  std::error_code send(const tm::superior_message& m) {
    cp_->hit(step::send_before);
    const std::error_code ec = wire_->send(m);
    sent_.fetch_add(1, std::memory_order_relaxed);
    cp_->hit(step::send_after);
    return ec;
  }

  template <tm::superior_receiver R>
  void attach(const guid& id, R& r) {
    receiver_ = &r;
    deliver_ = [](void* self, const tm::superior_message& m) { static_cast<R*>(self)->receive(m); };
    wire_->attach(id, *this);
  }
  void detach(const guid& id) { wire_->detach(id); }

  // grpc_transport's receiver.
  void receive(const tm::superior_message& m) {
    if (hook_ && !hook_(m)) return;
    cp_->hit(step::recv_before);
    deliver_(receiver_, m);
    cp_->hit(step::recv_after);
  }

  std::uint64_t messages_sent() const noexcept { return sent_.load(std::memory_order_relaxed); }
  net::grpc_transport& wire() noexcept { return *wire_; }

 private:
  net::grpc_transport* wire_;
  crash_points* cp_;
  std::function<bool(const tm::superior_message&)> hook_;
  void* receiver_ = nullptr;
  void (*deliver_)(void*, const tm::superior_message&) = nullptr;
  std::atomic<std::uint64_t> sent_{0};
};

static_assert(tm::check_superior_transport<node_transport>());

}  // namespace ktm::distributed
