// ktm/net/grpc/grpc_transport_options.hpp: the settings of a grpc_transport
// and the counters it keeps (ktm/net/grpc/grpc_transport.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ktm::net {

struct grpc_transport_options {
  // Where the server listens: "host:port"; port 0 picks a free one (see
  // grpc_transport::port()). Empty: no server (the transport only sends).
  std::string listen_address = "127.0.0.1:0";
  // The deadline of one batch to a peer. A batch that misses it counts as
  // lost and marks the peer down (send() answers errc::disconnected until
  // its channel is connected again).
  std::chrono::milliseconds rpc_timeout{2000};
  // How soon a channel tries again after a failed connection attempt; the
  // delay grows from min to max while the peer stays away.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{1000};
  // Messages waiting for one peer; send() answers errc::disconnected when full.
  std::size_t max_queue = 1u << 16;
  // The most messages one call to a peer carries.
  std::size_t max_batch = 512;
};

// What a transport did since it was made. A snapshot; every field only grows.
struct grpc_transport_counters {
  std::uint64_t sent = 0;                // messages in batches a peer acknowledged
  std::uint64_t sent_local = 0;          // given to a receiver attached here, no network
  std::uint64_t received = 0;            // arrived from a peer and given to a receiver
  std::uint64_t send_failed = 0;         // send() answered an error (no route, peer down, queue full)
  std::uint64_t lost = 0;                // accepted by send(), but their batch failed
  std::uint64_t dropped_malformed = 0;   // arrived, failed validation (wire_codec.hpp)
  std::uint64_t dropped_unattached = 0;  // arrived for a TM no receiver is attached for
  std::uint64_t dropped_stale = 0;       // arrived after a later message of the same sender
  std::uint64_t batches_sent = 0;        // calls to peers that succeeded
};

}  // namespace ktm::net
