// tests/tm/superior_fixtures.hpp: durable superior and subordinate TMs over
// fault-injecting memory storage, for the recovery and crash tests.
//
// durable_side<TM, RM>  one TM with its own log (a "process"): start()
//                       opens or creates the log, makes the RM over the
//                       side's ledger and the TM (same ids on every run);
//                       crash() kills the storage (unflushed writes lost)
//                       and drops the objects; restart() starts and
//                       recovers. The ledger survives.
// top_tm / leaf_tm      a durable superior (dynamic storage: it enlists
//                       subordinates) and a durable subordinate (static
//                       storage), both over a fault_transport.
// graveyard             transactions of a crashed side are never destroyed
//                       (their process is gone): they are kept here.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/support/superior_fakes.hpp"
#include "tests/tm/durable_fixtures.hpp"

namespace ktm::test {

using log_t = ktm::log::log<fault_storage>;
using top_rm = ledger_rm<1>;
using leaf_rm = ledger_rm<2>;

template <class InDoubt = kt::wait_in_doubt, class... O>
using durable_superior_tm =
    kt::superior_transaction_manager<kt::with_transport<fault_transport>, kt::with_log<kt::durable_log_for<fault_storage>>,
                                     kt::with_recovery<kt::replay_recovery<1024, InDoubt>>, O...>;
using top_tm = durable_superior_tm<kt::wait_in_doubt, kt::with_storage<kt::dynamic_storage>>;
template <class InDoubt = kt::wait_in_doubt>
using leaf_tm_with = durable_superior_tm<InDoubt, kt::with_storage<kt::static_storage<leaf_rm>>>;
using leaf_tm = leaf_tm_with<>;

inline std::vector<std::shared_ptr<void>>& graveyard() {
  static auto* g = new std::vector<std::shared_ptr<void>>;  // never destroyed, on purpose
  return *g;
}

template <class TM, class RM>
struct durable_side {
  fault_transport* bus;
  fault_storage st{ktm::io::memory_storage{}};
  ktm::guid tm_id = ktm::guid::generate();
  ktm::guid rm_id = ktm::guid::generate();
  ledger book;
  std::optional<log_t> lg;
  std::optional<ktm::log::stream<fault_storage>> ts;
  std::optional<RM> rm;
  std::optional<TM> tm;
  bool created = false;

  explicit durable_side(fault_transport& b) : bus(&b) {}
  ~durable_side() { stop(); }

  void start() {
    auto l = created ? log_t::open(st, "txlog", durable_options()) : log_t::create(st, "txlog", durable_options());
    REQUIRE(l);
    lg.emplace(std::move(*l));
    auto t = created ? lg->open_stream("tm") : lg->create_stream("tm");
    REQUIRE(t);
    created = true;
    ts.emplace(*t);
    rm.emplace(book, rm_id);
    if constexpr (TM::storage_type::is_static) {
      tm.emplace(*bus, kt::log_arg, *ts, tm_id, *rm);
    } else {
      tm.emplace(*bus, kt::log_arg, *ts, tm_id);
      REQUIRE(tm->add_resource_manager(*rm));
    }
  }
  // start, recover the TM, then (registered storage) the RM.
  void restart() {
    start();
    REQUIRE(tm->recover());
    if constexpr (!TM::storage_type::is_static) REQUIRE(tm->recover_resource_manager(*rm));
  }
  void stop() {
    tm.reset();
    rm.reset();
    ts.reset();
    lg.reset();
  }
  void crash() {
    (void)st.controller()->crash();
    st.controller()->clear_faults();  // a crash point not reached does not follow into the next run
    stop();
  }
};

// A transaction owned by the test that a crash may abandon.
template <class TM>
struct owned_tx {
  std::shared_ptr<typename TM::transaction> tx;
  owned_tx(TM& tm, const ktm::guid& uow) : tx(std::make_shared<typename TM::transaction>(tm, uow)) {}
  typename TM::transaction* operator->() const { return tx.get(); }
  typename TM::transaction& operator*() const { return *tx; }
  // Its process crashed: never destroyed.
  void abandon() {
    if (!tx) return;
    graveyard().push_back(std::move(tx));
  }
};

}  // namespace ktm::test
