// ktm/concepts/superior_transport.hpp: the concept of a transport between a
// superior TM and its subordinate TMs (ktm/tm/superior/message.hpp).
//
// Minimal complete definition (t a T&, m a const superior_message&, id a
// const guid&, r an R& where R has `void receive(const superior_message&)`):
//   t.send(m) -> std::error_code   hand m to the TM m.to. Success means the
//                                  transport accepted it, not that it was
//                                  processed; errc::disconnected when the
//                                  peer is unreachable now. Never blocks for
//                                  long; may be called from inside receive().
//   t.attach(id, r)                from now on, messages to TM `id` arriving
//                                  at this transport are given to r.receive()
//   t.detach(id)                   stop delivering to `id`; when it returns,
//                                  no receive() for `id` is running or will run
//
// Laws: a message is delivered at most once per successful send and only to
// the receiver attached for m.to (or dropped when none is); messages between
// one pair of TMs may be lost when send() fails, but a successful send is
// not silently reordered after a later successful send between the same
// pair; receive() may run on any thread, and concurrently for different
// transactions, so receivers are thread-safe and never hold a lock of their
// own across send().
// Models: in_process_transport (direct calls), grpc_transport (optional
// target //ktm/net/grpc, cross-process).
#pragma once

#include <concepts>
#include <system_error>

#include "ktm/guid.hpp"
#include "ktm/tm/superior/message.hpp"

namespace ktm::tm {
namespace detail {

// The least a receiver offers; used to check attach().
struct superior_receiver_archetype {
  void receive(const superior_message&) {}
};

template <class T>
concept has_superior_send = requires(T& t, const superior_message& m) {
  { t.send(m) } -> std::same_as<std::error_code>;
};
template <class T>
concept has_superior_attach = requires(T& t, const guid& id, superior_receiver_archetype& r) {
  t.attach(id, r);
  t.detach(id);
};

}  // namespace detail

template <class R>
concept superior_receiver = requires(R& r, const superior_message& m) { r.receive(m); };

template <class T>
concept superior_transport = detail::has_superior_send<T> && detail::has_superior_attach<T>;

template <class T>
consteval bool check_superior_transport() {
  static_assert(detail::has_superior_send<T>,
                "superior_transport: missing `std::error_code send(const superior_message&)`");
  static_assert(detail::has_superior_attach<T>,
                "superior_transport: missing `attach(const guid&, Receiver&)` or `detach(const guid&)`");
  return superior_transport<T>;
}

}  // namespace ktm::tm
