// ktm/tm/static_storage.hpp: a fixed set of RM types known at compile time.
//
// The TM is built with one reference per RM (`tm{rm_a, rm_b}`); each
// transaction holds one enlistment slot per RM inline, and notifications go
// to the handlers by direct calls unrolled with Boost.Hana: no virtual call,
// no allocation per transaction. Each RM type may appear once.
#pragma once

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/hana.hpp>

#include "ktm/concepts/enlistment_storage.hpp"
#include "ktm/tm/resource_manager.hpp"

namespace ktm::tm {

template <class... RMs>
class static_storage {
  static_assert(sizeof...(RMs) > 0, "static_storage: list at least one resource manager type");
  static_assert(boost::hana::size(boost::hana::to_set(boost::hana::tuple_t<RMs...>)) ==
                    boost::hana::size_c<sizeof...(RMs)>,
                "static_storage: each resource manager type may appear only once");
  static_assert((resource_manager<RMs> && ...),
                "static_storage: every type must be a resource_manager (see check_resource_manager<R>())");

 public:
  // R's position in the list; rm_count when R is not listed.
  template <class R>
  static constexpr std::size_t index_of() {
    constexpr bool same[] = {std::is_same_v<R, RMs>...};
    for (std::size_t i = 0; i < sizeof...(RMs); ++i)
      if (same[i]) return i;
    return sizeof...(RMs);
  }

  static constexpr bool is_static = true;
  static constexpr bool may_hold_durable = (detail::is_durable_rm<RMs> || ...);
  static constexpr std::size_t rm_count = sizeof...(RMs);
  template <std::size_t I>
  using rm_at = std::tuple_element_t<I, std::tuple<RMs...>>;
  using set_type = std::array<enlistment, sizeof...(RMs)>;

  explicit static_storage(RMs&... rms) noexcept : rms_(&rms...) {}

  std::size_t size(set_type& set) const noexcept {
    std::size_t n = 0;
    for (auto& e : set) n += e.status() != enlistment_status::unused;
    return n;
  }

  template <class R>
  result<enlistment*> add(set_type& set, R& rm, bool accept_durable) {
    constexpr std::size_t i = index_of<R>();
    static_assert(i < sizeof...(RMs), "static_storage: this RM type is not one of the storage's RMs");
    if (!accept_durable && detail::is_durable_rm<R>) return errc::volatile_tm_durable_rm;
    if (boost::hana::at_c<i>(rms_) != &rm) return errc::rm_not_found;
    if (set[i].status() != enlistment_status::unused) return errc::already_enlisted;
    return &set[i];
  }

  // Unrolled, and the unrolling inlined: with the inline dispatcher a
  // transaction's phase becomes straight code (detail/straight_line_commit.hpp).
  template <class F>
  [[gnu::always_inline]] void for_each_slot(set_type& set, F&& f) {
    for_each_slot_unfiltered(set, [&](enlistment& e, const auto& inv) __attribute__((always_inline)) {
      if (e.status() != enlistment_status::unused) f(e, inv);
    });
  }

  // The same over every slot, unused ones too: for a caller whose own test
  // of the status rules unused slots out.
  template <class F>
  [[gnu::always_inline]] void for_each_slot_unfiltered(set_type& set, F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) __attribute__((always_inline)) {
      (f(set[I], detail::static_invoker<rm_at<I>>(boost::hana::at_c<I>(rms_))), ...);
    }(std::make_index_sequence<sizeof...(RMs)>{});
  }

  template <class F>
  void for_each_rm(F&& f) {
    boost::hana::for_each(rms_, [&](auto* rm) {
      using R = std::remove_pointer_t<decltype(rm)>;
      f(detail::static_invoker<R>(rm));
    });
  }

  // The I-th RM of the list.
  template <std::size_t I>
  rm_at<I>& at() noexcept {
    return *boost::hana::at_c<I>(rms_);
  }
  template <class R>
  R& get() noexcept {
    return *boost::hana::at_c<index_of<R>()>(rms_);
  }

 private:

  boost::hana::tuple<RMs*...> rms_;
};

}  // namespace ktm::tm
