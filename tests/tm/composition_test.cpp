// tests/tm/composition_test.cpp: assembling a TM from options; a volatile
// TM rejects durable RMs; the log seam is called at the right points.
#include <catch2/catch.hpp>

#include <cstddef>
#include <type_traits>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;

// Options are named and may come in any order.
using tm1 = basic_transaction_manager<with_dispatcher<inline_dispatcher>, with_storage<static_storage<rm_a, rm_b>>,
                                      with_log<no_log>>;
using tm2 = basic_transaction_manager<with_log<no_log>, with_storage<static_storage<rm_a, rm_b>>,
                                      with_dispatcher<inline_dispatcher>>;
static_assert(std::is_same_v<tm1::storage_type, tm2::storage_type>);
static_assert(std::is_same_v<tm1::dispatcher_type, tm2::dispatcher_type>);
// Defaults fill the rest.
static_assert(std::is_same_v<basic_transaction_manager<>::dispatcher_type, inline_dispatcher>);
static_assert(std::is_same_v<basic_transaction_manager<>::storage_type, dynamic_storage>);
static_assert(std::is_same_v<basic_transaction_manager<>::log_type, no_log>);
static_assert(std::is_same_v<basic_transaction_manager<>::recovery_type, no_recovery>);
static_assert(std::is_same_v<basic_transaction_manager<>::clock_type, atomic_virtual_clock>);
static_assert(volatile_transaction_manager<>::is_volatile);
static_assert(!basic_transaction_manager<with_log<memory_log>>::is_volatile);

// Rejected combinations (each a static_assert with a message in the host).
static_assert(can_compose<with_storage<static_storage<rm_a>>>);
static_assert(!can_compose<with_storage<static_storage<rm_a, durable_rm>>, with_log<no_log>>,
              "a durable RM in a static storage with no log");
static_assert(!can_compose<with_storage<static_storage<durable_rm>>>, "no_log is the default");
static_assert(can_compose<with_storage<static_storage<rm_a, durable_rm>>, with_log<memory_log>>);
static_assert(!can_compose<with_log<no_log>, with_log<no_log>>, "the same option twice");
static_assert(!can_compose<with_dispatcher<inline_dispatcher>, with_dispatcher<queued_dispatcher>>);
static_assert(!can_compose<inline_dispatcher>, "not an option");
static_assert(!can_compose<with_dispatcher<int>>, "not a dispatcher");
static_assert(!can_compose<with_storage<int>>, "not a storage");
static_assert(!can_compose<with_clock<int>>, "not a clock");
static_assert(!can_compose<with_log<int>>, "not a log");
struct replaying_recovery {
  static constexpr bool needs_log = true;
  template <class L>
  ktm::result<recovery_summary> recover(L&) {
    return recovery_summary{42, 0, 0};
  }
};
static_assert(!can_compose<with_recovery<replaying_recovery>>, "recovery needs a log");
static_assert(can_compose<with_recovery<replaying_recovery>, with_log<memory_log>>);

// The concepts accept their models and name what a non-model lacks.
static_assert(check_notification_dispatcher<inline_dispatcher>());
static_assert(check_notification_dispatcher<queued_dispatcher>());
static_assert(check_notification_dispatcher<thread_pool_dispatcher<2>>());
static_assert(check_enlistment_storage<static_storage<rm_a, rm_b>>());
static_assert(check_enlistment_storage<inline_array_storage<4>>());
static_assert(check_enlistment_storage<dynamic_storage>());
static_assert(check_log_backend<no_log>());
static_assert(check_recovery_policy<no_recovery, no_log>());
static_assert(check_tm_clock<atomic_virtual_clock>());
static_assert(check_resource_manager<rm_a>());
struct not_an_rm {
  reply on_prepare(enlistment&, const notification&);
};
static_assert(!resource_manager<not_an_rm>);
static_assert(!notification_dispatcher<not_an_rm>);
static_assert(!log_backend<not_an_rm>);
static_assert(!tm_clock<not_an_rm>);

// A storage must have add (transaction.hpp enlists through it) and, unless
// static, registry() (add_resource_manager / remove_resource_manager): one
// without them is rejected by the concept check, not deep in transaction.hpp.
template <bool IsStatic, bool HasAdd, bool HasRegistry, bool HasUnfiltered = true>
struct probe_storage {
  static constexpr bool is_static = IsStatic;
  static constexpr bool may_hold_durable = false;
  struct set_type {};
  std::size_t size(set_type&) const { return 0; }
  template <class F>
  void for_each_slot(set_type&, F&&) {}
  template <class F>
  void for_each_rm(F&&) {}
  template <class F>
    requires HasUnfiltered
  void for_each_slot_unfiltered(set_type&, F&&) {}
  template <class R>
    requires HasAdd
  ktm::result<enlistment*> add(set_type&, R&, bool) {
    return ktm::errc::rm_not_found;
  }
  detail::rm_registry& registry()
    requires HasRegistry
  {
    return registry_;
  }
  detail::rm_registry registry_;
};
using storage_without_add = probe_storage<true, false, true>;
using static_storage_without_registry = probe_storage<true, true, false>;
using registered_storage_without_registry = probe_storage<false, true, false>;
static_assert(!detail::has_add<storage_without_add>, "check_enlistment_storage names the missing add");
static_assert(!enlistment_storage<storage_without_add>);
static_assert(!can_compose<with_storage<storage_without_add>>, "rejected before transaction.hpp uses add");
static_assert(!detail::has_add<probe_storage<false, false, true>>);
static_assert(!enlistment_storage<probe_storage<false, false, true>>);
static_assert(!detail::has_registry_unless_static<registered_storage_without_registry>,
              "check_enlistment_storage names the missing registry()");
static_assert(!enlistment_storage<registered_storage_without_registry>);
static_assert(!can_compose<with_storage<registered_storage_without_registry>>);
static_assert(enlistment_storage<static_storage_without_registry>, "a static storage needs no registry");
static_assert(check_enlistment_storage<probe_storage<false, true, true>>());
static_assert(check_enlistment_storage<static_storage_without_registry>());
// A static storage must also visit every slot (the straight-line commit).
using static_storage_without_unfiltered = probe_storage<true, true, true, false>;
static_assert(!detail::has_unfiltered_if_static<static_storage_without_unfiltered>,
              "check_enlistment_storage names the missing for_each_slot_unfiltered");
static_assert(!enlistment_storage<static_storage_without_unfiltered>);
static_assert(!can_compose<with_storage<static_storage_without_unfiltered>>);
static_assert(enlistment_storage<probe_storage<false, true, true, false>>, "only a static storage needs it");

TEST_CASE("a volatile TM with dynamic storage rejects a durable RM") {
  rm_a a;
  durable_rm d;
  volatile_transaction_manager<> tm;
  CHECK(tm.add_resource_manager(d).code() == ktm::errc::volatile_tm_durable_rm);
  REQUIRE(tm.add_resource_manager(a));
  auto tx = tm.begin();
  CHECK(tx.enlist(d).code() == ktm::errc::volatile_tm_durable_rm);
  auto e = tx.enlist(a);
  CHECK(e);
  CHECK(tx.commit());
}

TEST_CASE("a volatile TM with inline array storage rejects a durable RM") {
  durable_rm d;
  volatile_transaction_manager<with_storage<inline_array_storage<2>>> tm;
  CHECK(tm.add_resource_manager(d).code() == ktm::errc::volatile_tm_durable_rm);
  auto tx = tm.begin();
  CHECK(tx.enlist(d).code() == ktm::errc::volatile_tm_durable_rm);
}

TEST_CASE("a TM with a durable log accepts durable RMs") {
  durable_rm d;
  basic_transaction_manager<with_log<memory_log>> tm;
  REQUIRE(tm.add_resource_manager(d));
  auto tx = tm.begin();
  auto e = tx.enlist(d);
  REQUIRE(e);
  CHECK(tx.commit());
}

TEST_CASE("the commit record is forced at the commit point and the end record queued after") {
  struct logging_rm : resource_manager_base<rm_kind::durable_rm> {
    basic_transaction_manager<with_log<memory_log>, with_storage<static_storage<logging_rm>>>* tm = nullptr;
    std::size_t records_at_prepare = 99, records_at_commit = 99;
    reply on_prepare(enlistment&, const notification&) {
      records_at_prepare = tm->log().records.size();
      return reply::done();
    }
    reply on_commit(enlistment&, const notification&) {
      records_at_commit = tm->log().records.size();
      return reply::done();
    }
    reply on_rollback(enlistment&, const notification&) { return reply::done(); }
  } r;
  basic_transaction_manager<with_log<memory_log>, with_storage<static_storage<logging_rm>>> tm{r};
  r.tm = &tm;
  auto tx = tm.begin();
  auto e = tx.enlist(r, default_mask, enlistment_key(77));
  const std::byte info[] = {std::byte{1}, std::byte{2}, std::byte{3}};
  REQUIRE((*e)->set_recovery_information(info));
  REQUIRE(tx.commit());
  CHECK(r.records_at_prepare == 0);  // nothing logged before the commit point
  CHECK(r.records_at_commit == 1);   // the commit record precedes COMMIT
  const auto& recs = tm.log().records;
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].mode == log_append_mode::force);
  CHECK(recs[0].bytes[0] == std::byte{1});  // commit
  CHECK(recs[0].bytes[2] == std::byte{1});  // one enlistment
  CHECK(recs[0].bytes.size() == detail::tm_record_header_size + 16 + 8 + 4 + 2 + 3);
  CHECK(recs[1].mode == log_append_mode::queue_only);
  CHECK(recs[1].bytes[0] == std::byte{2});  // end
}

TEST_CASE("an aborted transaction logs nothing (presumed abort)") {
  durable_rm d;
  basic_transaction_manager<with_log<memory_log>> tm;
  REQUIRE(tm.add_resource_manager(d));
  d.answer(notify::prepare, reply::rollback());
  auto tx = tm.begin();
  auto e = tx.enlist(d);
  CHECK(!tx.commit());
  CHECK(tm.log().records.empty());
}

TEST_CASE("a failed forced commit record rolls the transaction back") {
  durable_rm d;
  basic_transaction_manager<with_log<memory_log>> tm;
  REQUIRE(tm.add_resource_manager(d));
  tm.log().fail_forces = true;
  auto tx = tm.begin();
  auto e = tx.enlist(d);
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(tx.reason() == abort_reason::log_failure);
  CHECK(d.kinds() == std::vector<notify>{notify::preprepare, notify::prepare, notify::rollback});
}

TEST_CASE("a checkpoint writes a restart area on a durable TM only") {
  basic_transaction_manager<with_log<memory_log>> durable;
  REQUIRE(durable.checkpoint());
  CHECK(durable.log().restart.size() == detail::tm_record_header_size);
  volatile_transaction_manager<> vol;
  CHECK(vol.checkpoint().code() == ktm::errc::volatile_tm);
}

TEST_CASE("a recovery policy's last clock is adopted") {
  basic_transaction_manager<with_log<memory_log>, with_recovery<replaying_recovery>> tm;
  auto r = tm.recover();
  REQUIRE(r);
  CHECK(tm.virtual_clock() == 42);
}

TEST_CASE("inline array storage holds at most N enlistments") {
  rm_a a;
  rm_b b;
  rm_c c;
  volatile_transaction_manager<with_storage<inline_array_storage<2>>> tm;
  REQUIRE(tm.add_resource_manager(a));
  REQUIRE(tm.add_resource_manager(b));
  REQUIRE(tm.add_resource_manager(c));
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  CHECK(tx.enlist(c).code() == ktm::errc::capacity_exhausted);
  CHECK(tx.commit());
}
