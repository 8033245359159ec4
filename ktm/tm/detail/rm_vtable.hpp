// ktm/tm/detail/rm_vtable.hpp: calling a resource manager's handlers, typed
// (static_invoker) or type-erased (erased_invoker over an rm_vtable).
//
// deliver(rm, e, n) maps a notification onto the RM's handler; handlers an
// RM does not define get the default answer (handler list:
// resource_manager.hpp). Both invokers have the same interface, which is
// what a notification_dispatcher works with:
//   inv(e, n) -> reply            run the handler here and now
//   inv.erase() -> erased_invoker  a copy that can wait in a queue
//   inv.queue() -> notification_queue*  the RM's own queue, or nullptr
#pragma once

#include <type_traits>

#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/reply.hpp"

namespace ktm::tm {

class notification_queue;
enum class rm_kind : std::uint8_t { volatile_rm, durable_rm };

namespace detail {

template <class R>
concept has_on_preprepare = requires(R& r, enlistment& e, const notification& n) {
  { r.on_preprepare(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_prepare = requires(R& r, enlistment& e, const notification& n) {
  { r.on_prepare(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_commit = requires(R& r, enlistment& e, const notification& n) {
  { r.on_commit(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_rollback = requires(R& r, enlistment& e, const notification& n) {
  { r.on_rollback(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_single_phase_commit = requires(R& r, enlistment& e, const notification& n) {
  { r.on_single_phase_commit(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_rm_disconnected = requires(R& r, enlistment& e, const notification& n) {
  r.on_rm_disconnected(e, n);
};
template <class R>
concept has_on_tm_online = requires(R& r, const notification& n) { r.on_tm_online(n); };
template <class R>
concept has_on_recover = requires(R& r, enlistment& e, const notification& n) {
  { r.on_recover(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_last_recover = requires(R& r, const notification& n) { r.on_last_recover(n); };
template <class R>
concept has_on_indoubt = requires(R& r, enlistment& e, const notification& n) { r.on_indoubt(e, n); };
template <class R>
concept has_notification_queue = requires(R& r) {
  { r.notifications() } -> std::same_as<notification_queue&>;
};
template <class R>
concept has_rm_kind = requires {
  { R::kind } -> std::convertible_to<rm_kind>;
};

template <class R>
inline constexpr bool is_durable_rm = [] {
  if constexpr (has_rm_kind<R>) return R::kind == rm_kind::durable_rm;
  else return false;
}();

// Whether a durable TM's commit record names R's prepared enlistments: a
// durable RM's, and those of an RM that asks for it with
// `static constexpr bool logged_enlistments = true` (a subordinate TM's
// proxy in its superior: volatile as an RM, but its identity is the
// subordinate TM's, the same after a restart). Another volatile RM's are
// not logged: it keeps nothing across a restart and has a new identity in
// each process, so recovery could never resolve them.
template <class R>
inline constexpr bool is_logged_rm = [] {
  if constexpr (requires { requires R::logged_enlistments; }) return true;
  else return is_durable_rm<R>;
}();

// Calls R's handler for a notification of kind K (n.kind == K), the kind
// known at compile time: a direct call of that one handler.
template <notify K, class R>
inline reply deliver_as(R& rm, enlistment* e, const notification& n) {
  if constexpr (K == notify::preprepare) {
    if constexpr (has_on_preprepare<R>) return rm.on_preprepare(*e, n);
    else return reply::done();
  } else if constexpr (K == notify::prepare) {
    return rm.on_prepare(*e, n);
  } else if constexpr (K == notify::commit) {
    return rm.on_commit(*e, n);
  } else if constexpr (K == notify::rollback) {
    return rm.on_rollback(*e, n);
  } else if constexpr (K == notify::single_phase_commit) {
    if constexpr (has_on_single_phase_commit<R>) return rm.on_single_phase_commit(*e, n);
    else return reply::reject();  // cannot commit alone: use two phases
  } else if constexpr (K == notify::rm_disconnected) {
    if constexpr (has_on_rm_disconnected<R>) rm.on_rm_disconnected(*e, n);
    return reply::done();
  } else if constexpr (K == notify::tm_online) {
    if constexpr (has_on_tm_online<R>) rm.on_tm_online(n);
    return reply::done();
  } else if constexpr (K == notify::recover) {  // the answer is recover_enlistment; the outcome follows
    if constexpr (has_on_recover<R>) return rm.on_recover(*e, n);
    else return reply::done();
  } else if constexpr (K == notify::last_recover) {
    if constexpr (has_on_last_recover<R>) rm.on_last_recover(n);
    return reply::done();
  } else if constexpr (K == notify::indoubt) {  // prepared, outcome unknown: keep the prepared state
    if constexpr (has_on_indoubt<R>) rm.on_indoubt(*e, n);
    return reply::done();
  } else {
    return reply::done();
  }
}

// Calls R's handler for n. e is null only for TM-wide notifications.
template <class R>
inline reply deliver(R& rm, enlistment* e, const notification& n) {
  switch (n.kind) {
    case notify::preprepare: return deliver_as<notify::preprepare>(rm, e, n);
    case notify::prepare: return deliver_as<notify::prepare>(rm, e, n);
    case notify::commit: return deliver_as<notify::commit>(rm, e, n);
    case notify::rollback: return deliver_as<notify::rollback>(rm, e, n);
    case notify::single_phase_commit: return deliver_as<notify::single_phase_commit>(rm, e, n);
    case notify::rm_disconnected: return deliver_as<notify::rm_disconnected>(rm, e, n);
    case notify::tm_online: return deliver_as<notify::tm_online>(rm, e, n);
    case notify::recover: return deliver_as<notify::recover>(rm, e, n);
    case notify::last_recover: return deliver_as<notify::last_recover>(rm, e, n);
    case notify::indoubt: return deliver_as<notify::indoubt>(rm, e, n);
    default: return reply::done();
  }
}

template <class R>
concept has_rm_id = requires(const R& r) {
  { r.id() } -> std::convertible_to<guid>;
};
template <class R>
inline guid rm_id(const R& rm) noexcept {
  if constexpr (has_rm_id<R>) return rm.id();
  else return (void)rm, guid{};
}

struct rm_vtable {
  reply (*deliver)(void* rm, enlistment* e, const notification& n);
  notification_queue* (*queue)(void* rm);
  guid (*id)(const void* rm);
  bool logged;  // is_logged_rm
};

template <class R>
inline constexpr rm_vtable vtable_for{
    [](void* rm, enlistment* e, const notification& n) { return detail::deliver(*static_cast<R*>(rm), e, n); },
    [](void* rm) -> notification_queue* {
      if constexpr (has_notification_queue<R>) return &static_cast<R*>(rm)->notifications();
      else return (void)rm, nullptr;
    },
    [](const void* rm) { return detail::rm_id(*static_cast<const R*>(rm)); },
    is_logged_rm<R>,
};

class erased_invoker {
 public:
  erased_invoker() noexcept = default;
  erased_invoker(const rm_vtable* vt, void* rm) noexcept : vt_(vt), rm_(rm) {}
  reply operator()(enlistment* e, const notification& n) const { return vt_->deliver(rm_, e, n); }
  erased_invoker erase() const noexcept { return *this; }
  notification_queue* queue() const noexcept { return vt_->queue(rm_); }
  guid rm_id() const noexcept { return vt_->id(rm_); }
  bool logged() const noexcept { return vt_->logged; }
  void* rm() const noexcept { return rm_; }

 private:
  const rm_vtable* vt_ = nullptr;
  void* rm_ = nullptr;
};

template <class R>
class static_invoker {
 public:
  using rm_type = R;
  explicit static_invoker(R* rm) noexcept : rm_(rm) {}
  reply operator()(enlistment* e, const notification& n) const { return detail::deliver(*rm_, e, n); }
  // The same for n.kind == K known at compile time (the inline dispatcher).
  template <notify K>
  reply call(enlistment* e, const notification& n) const {
    return detail::deliver_as<K>(*rm_, e, n);
  }
  erased_invoker erase() const noexcept { return {&vtable_for<R>, rm_}; }
  notification_queue* queue() const noexcept {
    if constexpr (has_notification_queue<R>) return &rm_->notifications();
    else return nullptr;
  }
  R* rm() const noexcept { return rm_; }
  guid rm_id() const noexcept { return detail::rm_id(*rm_); }
  static constexpr bool logged() noexcept { return is_logged_rm<R>; }

 private:
  R* rm_;
};

}  // namespace detail
}  // namespace ktm::tm
