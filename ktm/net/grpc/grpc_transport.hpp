// ktm/net/grpc/grpc_transport.hpp: a superior_transport between processes
// over gRPC (ktm/concepts/superior_transport.hpp; doc/transport.md).
//
// One transport per process. It runs one gRPC server (the superior_link
// service of proto/ktm_superior.proto) and one channel per peer address.
//
//   grpc_transport t;                        // listens on 127.0.0.1, any port
//   t.add_peer(other_tm, "127.0.0.1:7000");  // where TM other_tm lives
//   t.attach(my_tm, my_receiver);            // messages to my_tm arrive here
//   t.send(m);                               // m.to attached here: a direct
//                                            // call; else to m.to's peer
//
// send() never waits for the network: it queues m for the peer's sender
// thread, which carries queued messages in batches, in order, one call at a
// time, each with a deadline (options.rpc_timeout). It answers
// errc::disconnected when m.to is neither attached here nor a known peer,
// when the peer's queue is full, and while the peer is known to be down
// (its last batch failed and its channel has not connected again). The
// messages of a failed batch are lost, never resent: the protocol resends
// (ktm/tm/superior/message.hpp). Channels reconnect by themselves, so a
// peer that restarts on the same address is reachable again without any
// call here.
//
// Arriving messages are validated (wire_codec.hpp) and given to the
// receiver attached for m.to; messages that fail validation, are addressed
// to no attached TM, or arrive after a later message of the same sending
// transport are dropped and counted (counters()). Messages from one sending
// transport are delivered in the order they were sent, one at a time;
// messages from different transports concurrently. receive() may call
// send(). detach(id) waits for the receive() calls for id that are running
// (except the caller's own, when it is called from inside one).
//
// Thread-safe. Not copyable; movable (a moved-from transport may only be
// destroyed or assigned to). Destruction stops the server (waiting
// for running receive() calls) and the sender threads (dropping what is
// still queued).
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "ktm/concepts/superior_transport.hpp"
#include "ktm/guid.hpp"
#include "ktm/net/grpc/grpc_transport_options.hpp"
#include "ktm/tm/superior/message.hpp"

namespace ktm::net {

class grpc_transport {
 public:
  grpc_transport() : grpc_transport(grpc_transport_options{}) {}
  explicit grpc_transport(std::string listen_address)
      : grpc_transport(options_listening_on(std::move(listen_address))) {}
  explicit grpc_transport(grpc_transport_options options);
  ~grpc_transport();
  grpc_transport(grpc_transport&&) noexcept;
  grpc_transport& operator=(grpc_transport&&) noexcept;
  grpc_transport(const grpc_transport&) = delete;
  grpc_transport& operator=(const grpc_transport&) = delete;

  // Empty when the server listens (or none was asked for);
  // errc::invalid_argument when it could not listen on the address.
  std::error_code status() const noexcept;
  // The bound port; 0 when not listening.
  int port() const noexcept;
  // "127.0.0.1:<port>": where peers on this host reach this transport.
  std::string address() const;

  // Messages to TM `tm` go to the transport at `address` ("host:port").
  // TMs at one address share one channel, queue and order. Calling it again
  // for `tm` moves it. errc::invalid_argument for an empty address.
  std::error_code add_peer(const guid& tm, const std::string& address);
  void remove_peer(const guid& tm);

  std::error_code send(const tm::superior_message& m);

  // From now on, messages to `id` arriving here are given to r.receive(m).
  // `id` must not be attached already; r must outlive detach(id).
  template <tm::superior_receiver R>
  void attach(const guid& id, R& r) {
    attach_erased(id, &r, [](void* self, const tm::superior_message& m) { static_cast<R*>(self)->receive(m); });
  }
  void detach(const guid& id);

  grpc_transport_counters counters() const noexcept;

 private:
  using receive_fn = void (*)(void*, const tm::superior_message&);
  void attach_erased(const guid& id, void* receiver, receive_fn fn);

  static grpc_transport_options options_listening_on(std::string address) {
    grpc_transport_options o;
    o.listen_address = std::move(address);
    return o;
  }

  struct impl;
  std::unique_ptr<impl> impl_;
};

static_assert(tm::check_superior_transport<grpc_transport>());

}  // namespace ktm::net
