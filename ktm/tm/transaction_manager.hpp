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
//   auto st = tm.begin_static();         // handlers answer by returning
//   st.enlist(a); st.enlist(b);          // (static_transaction.hpp)
//   st.commit();
//
// Options (options.hpp) in any order, each at most once; the policies are
// checked against their concepts here, with messages naming what is missing,
// and conflicting combinations are rejected (a durable RM with no_log).
// Thread-safe: any number of threads may begin and run transactions at once.
// The TM must outlive its transactions.
#pragma once

#include <atomic>
#include <concepts>
#include <type_traits>
#include <utility>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/timeout_service.hpp"
#include "ktm/tm/options.hpp"
#include "ktm/tm/static_transaction.hpp"
#include "ktm/tm/transaction.hpp"

namespace ktm::tm {

namespace detail {
// A durable TM's log (durable_log.hpp): fail-stop flag, replay, outcomes.
template <class L>
concept durable_tm_log = requires(L& l, const L& cl, const guid& g, std::uint64_t c, std::size_t n) {
  { cl.failed() } -> std::convertible_to<bool>;
  l.attach(g, n);
  { l.replay(c) } -> std::same_as<result<recovery_summary>>;
  { cl.recovered_outcome(g) } -> std::same_as<transaction_outcome>;
};
template <class P>
concept has_checkpoint_every = requires {
  { P::checkpoint_every } -> std::convertible_to<std::size_t>;
};
}  // namespace detail

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
                "with_storage<S>, with_log<L>, with_recovery<P>, with_clock<C>, with_threading<P> or "
                "with_transport<T>");
  static_assert(config::unique_kinds, "basic_transaction_manager: the same option kind is given twice");
  static_assert(check_notification_dispatcher<typename config::dispatcher>());
  static_assert(check_enlistment_storage<typename config::storage>());
  static_assert(check_log_backend<typename config::log>());
  static_assert(check_recovery_policy<typename config::recovery, typename config::log>());
  static_assert(check_tm_clock<typename config::clock>());
  static_assert(check_threading_policy<typename config::threading>());
  static consteval bool check_transport() {
    if constexpr (config::has_transport)
      return check_superior_transport<typename config::transport>() &&
             check_indoubt_policy<typename config::recovery>();
    else
      return true;
  }
  static_assert(check_transport());
  static_assert(!config::single_threaded_needs_inline,
                "basic_transaction_manager: with_threading<single_threaded> runs handlers on the caller's "
                "thread: it needs with_dispatcher<inline_dispatcher>");
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
  using threading_type = typename config::threading;
  using transport_type = typename config::transport;
  using transaction = basic_transaction<basic_transaction_manager>;
  using static_transaction = basic_static_transaction<basic_transaction_manager>;

  static constexpr bool is_volatile = !log_type::durable;
  static constexpr bool concurrent = threading_type::concurrent;
  static constexpr bool has_static_transactions =
      is_volatile && storage_type::is_static && std::is_same_v<dispatcher_type, inline_dispatcher> &&
      requires(storage_type& s) {
        s.template at<0>();
        requires storage_type::rm_count <= 32;
      };

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
      : id_(guid::generate()), log_(std::move(log)), storage_(std::forward<A>(storage_args)...) {
    attach_log();
  }

  // A durable TM with its id (keep it across restarts: restart areas carry it).
  template <class... A>
    requires std::constructible_from<storage_type, A&&...>
  basic_transaction_manager(log_arg_t, log_type log, const guid& id, A&&... storage_args)
      : id_(id), log_(std::move(log)), storage_(std::forward<A>(storage_args)...) {
    attach_log();
  }

  basic_transaction_manager(const basic_transaction_manager&) = delete;
  basic_transaction_manager& operator=(const basic_transaction_manager&) = delete;

  const guid& id() const noexcept { return id_; }
  // A durable TM whose log failed reports offline (fail-stop).
  tm_state state() const noexcept {
    if constexpr (detail::durable_tm_log<log_type>)
      if (log_.failed()) return tm_state::offline;
    return state_.load(std::memory_order_acquire);
  }
  // What new work gets from an offline TM: errc::tm_failed after a log
  // failure (fail-stop), else errc::tm_not_online.
  errc offline_error() const noexcept {
    if constexpr (detail::durable_tm_log<log_type>)
      if (log_.failed()) return errc::tm_failed;
    return errc::tm_not_online;
  }
  // True once a durable TM's log failed: no new work, ever (fail-stop).
  bool failed() const noexcept {
    if constexpr (detail::durable_tm_log<log_type>) return log_.failed();
    else return false;
  }
  std::uint64_t virtual_clock() const noexcept { return clock_.now(); }

  // initialized -> recovering -> online: runs the recovery policy, adopts
  // the last logged clock, then sends TM_ONLINE to every RM. A failure
  // leaves the TM offline. errc::invalid_state unless initialized.
  //
  // A durable TM (durable_log + replay_recovery) replays its stream: commit
  // records without an end record are redelivered as COMMIT (RECOVER first,
  // LAST_RECOVER after) to the RMs of a static storage here, before
  // TM_ONLINE; with a registered storage call recover_resource_manager(rm)
  // for each RM. Everything else is aborted (presumed abort).
  result<recovery_summary> recover() { return recover_up_to(0); }

  // recover(), counting only the log records stamped with a virtual clock
  // <= clock (0: all). Again on an online TM with a larger clock: replays
  // further and redelivers what was added. errc::volatile_tm on a volatile
  // TM; errc::invalid_state otherwise.
  result<recovery_summary> rollforward(std::uint64_t clock) {
    if constexpr (!log_type::durable) {
      (void)clock;
      return errc::volatile_tm;
    } else {
      if (state_.load(std::memory_order_acquire) == tm_state::initialized) {
        auto r = recover_up_to(clock);
        if (r) rolled_to_ = clock;
        return r;
      }
      if constexpr (detail::durable_tm_log<log_type>) {
        if (state() != tm_state::online || rolled_to_ == 0 || (clock != 0 && clock <= rolled_to_))
          return errc::invalid_state;
        result<recovery_summary> r = log_.replay(clock);
        if (!r) return r;
        clock_.merge(r->last_clock);
        rolled_to_ = clock;
        r->redelivered += redeliver_static();
        return r;
      } else {
        return errc::invalid_state;
      }
    }
  }

  // Recovery of one RM (KTM's RecoverResourceManager): RECOVER and COMMIT
  // for each of its enlistments in a recovered committed transaction, then
  // LAST_RECOVER (on_recover and on_last_recover are optional handlers),
  // delivered through the dispatcher like every notification (inline: here,
  // in this thread; queued: the RM pulls them; thread pool: the workers),
  // one handler after the other in that order. Returns the enlistments
  // redelivered. Idempotent: each enlistment is redelivered once.
  // errc::volatile_tm on a volatile TM; errc::invalid_state before recover().
  template <class R>
  result<std::size_t> recover_resource_manager(R& rm) {
    if constexpr (detail::durable_tm_log<log_type>) {
      const tm_state s = state_.load(std::memory_order_acquire);
      if (s == tm_state::initialized || s == tm_state::recovering) return errc::invalid_state;
      return log_.redeliver(detail::static_invoker<R>(&rm), dispatcher_, clock_.now());
    } else {
      (void)rm;
      return errc::volatile_tm;
    }
  }

  // The outcome of a transaction for an RM resolving its in-doubt ones:
  // committed if this TM logged its commit record (found by recovery or
  // logged since), else aborted (presumed abort). Durable TMs only.
  transaction_outcome recovered_outcome(const guid& uow) const
    requires detail::durable_tm_log<log_type>
  {
    return log_.recovered_outcome(uow);
  }

  // Restart areas every n completed transactions (0: on demand only); the
  // default comes from the recovery policy's checkpoint_every.
  void set_checkpoint_every(std::size_t n)
    requires detail::durable_tm_log<log_type>
  {
    log_.set_checkpoint_every(n);
  }

 private:
  result<recovery_summary> recover_up_to(std::uint64_t limit) {
    tm_state expected = tm_state::initialized;
    if (!state_.compare_exchange_strong(expected, tm_state::recovering)) return errc::invalid_state;
    result<recovery_summary> r = [&]() -> result<recovery_summary> {
      if constexpr (requires { recovery_.recover_until(log_, limit); }) {
        if (limit != 0) return recovery_.recover_until(log_, limit);
      }
      return recovery_.recover(log_);
    }();
    if (!r) {
      state_.store(tm_state::offline, std::memory_order_release);
      return r;
    }
    clock_.merge(r->last_clock);
    r->redelivered += redeliver_static();
    state_.store(tm_state::online, std::memory_order_release);
    const notification n{guid{}, notify::tm_online, clock_.now(), {}};
    storage_.for_each_rm([&](const auto& inv) { (void)dispatcher_.dispatch(inv, nullptr, n); });
    return r;
  }

  // A static storage's RMs are known: recover each of them.
  std::size_t redeliver_static() {
    std::size_t n = 0;
    if constexpr (detail::durable_tm_log<log_type> && storage_type::is_static) {
      storage_.for_each_rm([&](const auto& inv) { n += log_.redeliver(inv, dispatcher_, clock_.now()); });
    }
    return n;
  }

  void attach_log() {
    if constexpr (detail::durable_tm_log<log_type>) {
      std::size_t every = 0;
      if constexpr (detail::has_checkpoint_every<recovery_type>) every = recovery_type::checkpoint_every;
      log_.attach(id_, every);
    }
  }

 public:

  // -> offline: new enlistments fail with errc::tm_not_online and commits
  // roll back; transactions already past their commit point finish.
  void shutdown() noexcept { state_.store(tm_state::offline, std::memory_order_release); }

  // A new transaction (with a fresh or the given UOW id); owned by the caller.
  transaction begin() { return transaction(*this, guid::generate()); }
  transaction begin(const guid& uow) { return transaction(*this, uow); }

  // A static transaction (static_transaction.hpp): handlers answer by
  // returning, no handles; a volatile TM with static_storage and the inline
  // dispatcher only.
  static_transaction begin_static()
    requires has_static_transactions
  {
    return static_transaction(*this, guid::generate());
  }
  static_transaction begin_static(const guid& uow)
    requires has_static_transactions
  {
    return static_transaction(*this, uow);
  }

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
  // The recovery policy (e.g. replay_recovery's progress() callback).
  recovery_type& recovery() noexcept { return recovery_; }
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
  std::uint64_t rolled_to_ = 0;  // the clock of the last rollforward (0: none)
  storage_type storage_;
  detail::timeout_service timer_;
  dispatcher_type dispatcher_{};  // last: a pool's workers stop before the rest goes
};

// The common case: no log, volatile RMs only.
template <class... Options>
using volatile_transaction_manager = basic_transaction_manager<with_log<no_log>, Options...>;

}  // namespace ktm::tm
