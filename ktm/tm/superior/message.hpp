// ktm/tm/superior/message.hpp: what a superior TM and a subordinate TM say
// to each other, whatever carries it (ktm/concepts/superior_transport.hpp).
//
// A message names its sender and receiver TM by GUID and the transaction by
// its UOW GUID. The protocol is idempotent and driven by the senders: a
// message may be lost (the transport was down, a peer restarted), delivered
// twice or late, and every receiver answers a repeat as it answered the
// first. Loss is repaired by resending (the superior redelivers outcomes
// until the completion arrives; a prepared subordinate asks again with
// request_outcome / recover_query), never by the transport.
//
// The numeric values of superior_message_kind are stable ids: the
// cross-process transport writes them on the wire.
//
//   superior -> subordinate           subordinate -> superior
//   preprepare                        preprepare_complete
//   prepare                           prepare_complete | read_only | aborted
//   commit                            commit_complete
//   rollback                          rollback_complete
//   outcome (answer to a query)       commit_request (the client called commit)
//                                     request_outcome (a prepared RM asks)
//                                     recover_query (after the subordinate's recovery)
//                                     aborted (the subordinate rolled back alone)
#pragma once

#include <cstdint>

#include "ktm/guid.hpp"
#include "ktm/tm/states.hpp"

namespace ktm::tm {

enum class superior_message_kind : std::uint8_t {
  // superior -> subordinate
  preprepare = 1,
  prepare = 2,
  commit = 3,
  rollback = 4,
  outcome = 5,  // `outcome` field: committed, aborted, or undetermined (ask later)

  // subordinate -> superior
  preprepare_complete = 16,
  prepare_complete = 17,
  commit_complete = 18,
  rollback_complete = 19,
  read_only = 20,        // prepared with nothing to commit: drop out
  aborted = 21,          // the subordinate rolled back (an RM said no, a timeout, ...)
  commit_request = 22,   // the client asked the subordinate to commit
  request_outcome = 23,  // a prepared RM of the subordinate asks for the outcome
  recover_query = 24,    // the subordinate recovered a prepared transaction
};

struct superior_message {
  superior_message_kind kind{};
  guid from;     // the sending TM
  guid to;       // the receiving TM
  guid uow;      // the transaction (the same UOW on both sides)
  std::uint64_t clock = 0;  // the sender's virtual clock (max-merged on receipt)
  transaction_outcome outcome = transaction_outcome::undetermined;  // kind == outcome only

  friend bool operator==(const superior_message&, const superior_message&) = default;
};

// True for the kinds a superior sends to a subordinate.
constexpr bool is_downward(superior_message_kind k) noexcept {
  return static_cast<std::uint8_t>(k) >= 1 && static_cast<std::uint8_t>(k) <= 5;
}
// True for the kinds a subordinate sends to its superior.
constexpr bool is_upward(superior_message_kind k) noexcept {
  return static_cast<std::uint8_t>(k) >= 16 && static_cast<std::uint8_t>(k) <= 24;
}
// True for every kind this version knows (the wire decoder checks this).
constexpr bool is_known(superior_message_kind k) noexcept { return is_downward(k) || is_upward(k); }

}  // namespace ktm::tm
