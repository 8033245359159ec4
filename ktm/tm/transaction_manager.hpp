// ktm/tm/transaction_manager.hpp: the transaction manager host template.
//
//   using tm_type = ktm::tm::basic_transaction_manager<
//       ktm::tm::with_storage<ktm::tm::static_storage<rm_a, rm_b>>,
//       ktm::tm::with_dispatcher<ktm::tm::inline_dispatcher>>;
//   tm_type tm{a, b};                    // arguments go to the storage
//   tm.recover();                        // initialized -> online, TM_ONLINE
//   auto tx = tm.begin();
//   auto ea = tx.enlist(a); auto eb = tx.enlist(b);
//   tx.commit();
//
// Options (options.hpp) in any order, each at most once; the policies are
// checked against their concepts here, with messages naming what is missing,
// and conflicting combinations are rejected (a durable RM with no_log).
// Thread-safe: any number of threads may begin and run transactions at once.
// The TM must outlive its transactions.
#pragma once

#include <atomic>
#include <concepts>
#include <utility>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/timeout_service.hpp"
#include "ktm/tm/options.hpp"
#include "ktm/tm/transaction.hpp"

namespace ktm::tm {

// Tag: the next constructor argument is the log backend.
struct log_arg_t {
  explicit log_arg_t() = default;
};
inline constexpr log_arg_t log_arg{};

template <class... Options>
class basic_transaction_manager {
  using config = detail::tm_config<Options...>;
  static_assert(config::all_options,
                "basic_transaction_manager: every argument must be an option: with_dispatcher<D>, "
                "with_storage<S>, with_log<L>, with_recovery<P> or with_clock<C>");
  static_assert(config::unique_kinds, "basic_transaction_manager: the same option kind is given twice");
  static_assert(check_notification_dispatcher<typename config::dispatcher>());
  static_assert(check_enlistment_storage<typename config::storage>());
  static_assert(check_log_backend<typename config::log>());
  static_assert(check_recovery_policy<typename config::recovery, typename config::log>());
  static_assert(check_tm_clock<typename config::clock>());
  static_assert(!config::durable_rm_without_log,
                "basic_transaction_manager: a volatile TM (with_log<no_log>) accepts only volatile RMs, "
                "but the static_storage lists a durable one");
  static_assert(!config::recovery_without_log,
                "basic_transaction_manager: with_recovery<P> needs a durable log (with_log<L>), not no_log");

 public:
  using dispatcher_type = typename config::dispatcher;
  using storage_type = typename config::storage;
  using log_type = typename config::log;
  using recovery_type = typename config::recovery;
  using clock_type = typename config::clock;
  using transaction = basic_transaction<basic_transaction_manager>;

  static constexpr bool is_volatile = !log_type::durable;

  template <class... A>
    requires std::constructible_from<storage_type, A&&...>
  explicit basic_transaction_manager(A&&... storage_args)
      : id_(guid::generate()), storage_(std::forward<A>(storage_args)...) {}

  template <class... A>
    requires std::constructible_from<storage_type, A&&...>
  basic_transaction_manager(const guid& id, A&&... storage_args)
      : id_(id), storage_(std::forward<A>(storage_args)...) {}

  template <class... A>
    requires std::constructible_from<storage_type, A&&...>
  basic_transaction_manager(log_arg_t, log_type log, A&&... storage_args)
      : id_(guid::generate()), log_(std::move(log)), storage_(std::forward<A>(storage_args)...) {}

  basic_transaction_manager(const basic_transaction_manager&) = delete;
  basic_transaction_manager& operator=(const basic_transaction_manager&) = delete;

  const guid& id() const noexcept { return id_; }
  tm_state state() const noexcept { return state_.load(std::memory_order_acquire); }
  std::uint64_t virtual_clock() const noexcept { return clock_.now(); }

  // initialized -> recovering -> online: runs the recovery policy, adopts
  // the last logged clock, then sends TM_ONLINE to every RM. A failure
  // leaves the TM offline. errc::invalid_state unless initialized.
  result<recovery_summary> recover() {
    tm_state expected = tm_state::initialized;
    if (!state_.compare_exchange_strong(expected, tm_state::recovering)) return errc::invalid_state;
    result<recovery_summary> r = recovery_.recover(log_);
    if (!r) {
      state_.store(tm_state::offline, std::memory_order_release);
      return r;
    }
    clock_.merge(r->last_clock);
    state_.store(tm_state::online, std::memory_order_release);
    const notification n{guid{}, notify::tm_online, clock_.now(), {}};
    storage_.for_each_rm([&](const auto& inv) { (void)dispatcher_.dispatch(inv, nullptr, n); });
    return r;
  }

  // -> offline: new enlistments fail with errc::tm_not_online and commits
  // roll back; transactions already past their commit point finish.
  void shutdown() noexcept { state_.store(tm_state::offline, std::memory_order_release); }

  // A new transaction (with a fresh or the given UOW id); owned by the caller.
  transaction begin() { return transaction(*this, guid::generate()); }
  transaction begin(const guid& uow) { return transaction(*this, uow); }

  // Type-erased storages: RMs come and go. errc::volatile_tm_durable_rm for
  // a durable RM on a volatile TM; errc::already_exists when registered.
  template <class R>
    requires(!storage_type::is_static)
  result<void> add_resource_manager(R& rm) {
    static_assert(check_resource_manager<R>());
    return storage_.registry().add(rm, log_type::durable);
  }
  template <class R>
    requires(!storage_type::is_static)
  result<void> remove_resource_manager(R& rm) {
    return storage_.registry().remove(&rm);
  }

  // Writes a restart area (TM id and clock) in the log. errc::volatile_tm
  // for a volatile TM.
  result<void> checkpoint() {
    if constexpr (log_type::durable) {
      detail::tm_record_writer w(detail::tm_record_type::restart, clock_.now(), id_);
      auto r = log_.write_restart_area(w.bytes());
      if (!r) return std::move(r).error();
      return {};
    } else {
      return errc::volatile_tm;
    }
  }

  dispatcher_type& dispatcher() noexcept { return dispatcher_; }
  storage_type& storage() noexcept { return storage_; }
  log_type& log() noexcept { return log_; }
  clock_type& clock() noexcept { return clock_; }
  detail::timeout_service& timer() noexcept { return timer_; }

 private:
  guid id_;
  std::atomic<tm_state> state_{tm_state::initialized};
  clock_type clock_{};
  log_type log_{};
  recovery_type recovery_{};
  storage_type storage_;
  detail::timeout_service timer_;
  dispatcher_type dispatcher_{};  // last: a pool's workers stop before the rest goes
};

// The common case: no log, volatile RMs only.
template <class... Options>
using volatile_transaction_manager = basic_transaction_manager<with_log<no_log>, Options...>;

}  // namespace ktm::tm
