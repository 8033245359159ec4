// ktm/tm/detail/transaction_superior.hpp: a transaction's side of the
// superior protocol (ktm/tm/superior, doc/superior.md).
//
// The definitions of transaction_core's superior functions (its class is in
// ktm/tm/transaction_core.hpp, which includes this header at its end):
//   superior_wait    what a subordinate waits for from its superior, to ask
//                    again when a message may have been lost
//   post             queues a message for the TM's sink while this thread
//                    holds the transaction's guard (posted by the outermost
//                    release, never under the lock), else posts it at once
//   post_locked      queues a message to the superior (lock held)
//   request_outcome  a prepared RM asks the superior for the outcome
//                    (REQUEST_OUTCOME); errc::invalid_state unless prepared
//                    under a superior
#pragma once

#include "ktm/result.hpp"
#include "ktm/tm/states.hpp"
#include "ktm/tm/superior/sink.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm {

inline superior_message_kind transaction_core::superior_wait() const {
  guard g(*this);
  if (!has_superior_) return {};
  switch (internal_state()) {
    case tx_state::active:
      return client_decided_ && !client_rolled_back_ ? superior_message_kind::commit_request
                                                     : superior_message_kind{};
    // waiting for PREPARE: said again, so that a superior that forgot the
    // transaction answers ROLLBACK (presumed abort)
    case tx_state::preprepared: return superior_message_kind::preprepare_complete;
    case tx_state::prepared: return superior_message_kind::request_outcome;
    default: return {};
  }
}

inline void transaction_core::post(superior_sink& s, const superior_message& m) {
  {
    guard g(*this);
    if (g.nested()) {
      sink_ = &s;
      outbox_.push_back(m);
      return;
    }
  }
  s.post(m);
}

inline void transaction_core::post_locked(superior_message_kind k, transaction_outcome o) {
  superior_message m;
  m.kind = k;
  m.to = superior_;
  m.uow = id_;
  m.clock = clock_;
  m.outcome = o;
  outbox_.push_back(m);
}

inline result<void> transaction_core::request_outcome() {
  guard g(*this);
  if (!has_superior_ || internal_state() != tx_state::prepared) return errc::invalid_state;
  post_locked(superior_message_kind::request_outcome);
  return {};
}

}  // namespace ktm::tm
