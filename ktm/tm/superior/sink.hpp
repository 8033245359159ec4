// ktm/tm/superior/sink.hpp: where a transaction hands the messages it has
// for its superior or its subordinates: its TM's superior endpoint
// (basic_superior_transaction_manager).
//
// A transaction queues messages while it holds its lock and posts them once
// the lock is released (transaction_core's outbox), so post() is never
// called with a transaction's lock held and may deliver inline.
#pragma once

#include "ktm/guid.hpp"
#include "ktm/tm/superior/message.hpp"

namespace ktm::tm {

class superior_sink {
 public:
  // Sends m (m.from is filled in by the sink). No lock is held.
  virtual void post(const superior_message& m) = 0;
  // The subordinate transaction `uow` is being destroyed: no message may
  // reach it once this returns.
  virtual void forget(const guid& uow) noexcept = 0;

 protected:
  // Virtual so that a TM deriving from it (non-final, with virtual
  // functions) is destroyed cleanly wherever it is held, e.g. in a
  // std::optional; never deleted through a sink pointer.
  virtual ~superior_sink() = default;
};

}  // namespace ktm::tm
