// tests/tm/law_matrix.hpp: every dispatcher with every storage, for the laws
// suites (dispatcher_laws.hpp, storage_laws.hpp).
//
// for_each_law_world(f) calls f(world) once for each of the 3x3 combinations
// {inline_dispatcher, queued_dispatcher, thread_pool_dispatcher<2>} x
// {static_storage<rm_a, rm_b>, inline_array_storage<4>, dynamic_storage},
// each inside its own DYNAMIC_SECTION named after the combination ("the
// queued dispatcher with dynamic storage"), so a law's SECTIONs run once per
// combination. All nine compose (static_assert'ed below): no combination is
// illegal by design.
//
// law_world<D, S> is one combination: two recording RMs `a` and `b` known to
// a volatile TM `tm` (a static storage is constructed with them, the others
// register them), and for the queued dispatcher two threads serving the RMs'
// queues (rm_servers) for as long as the world lives.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <type_traits>

#include <boost/hana.hpp>

#include "tests/support/tm_fakes.hpp"

namespace ktm::test {

// Serves two RMs' own queues on their own threads (queued_dispatcher).
class rm_servers {
 public:
  rm_servers(rm_a& a, rm_b& b)
      : ta_([this, &a] { serve(a); }), tb_([this, &b] { serve(b); }) {}
  rm_servers(const rm_servers&) = delete;
  rm_servers& operator=(const rm_servers&) = delete;
  ~rm_servers() {
    stop_ = true;
    ta_.join();
    tb_.join();
  }

 private:
  template <class R>
  void serve(R& r) {
    while (!stop_) r.serve_one(std::chrono::milliseconds(5));
  }
  std::atomic<bool> stop_{false};
  std::thread ta_, tb_;
};

template <class D, class S>
struct law_world {
  using tm_type = kt::volatile_transaction_manager<kt::with_storage<S>, kt::with_dispatcher<D>>;

  law_world()
    requires S::is_static
      : tm(a, b) {
    serve();
  }
  law_world()
    requires(!S::is_static)
  {
    REQUIRE(tm.add_resource_manager(a));
    REQUIRE(tm.add_resource_manager(b));
    serve();
  }

  rm_a a;
  rm_b b;
  tm_type tm;
  std::optional<rm_servers> servers;  // last: stops before the TM and the RMs go

 private:
  void serve() {
    if constexpr (std::is_same_v<D, kt::queued_dispatcher>) servers.emplace(a, b);
  }
};

// What a combination is called in its section's name.
template <class T>
inline constexpr const char* law_name = nullptr;
template <>
inline constexpr const char* law_name<kt::inline_dispatcher> = "the inline dispatcher";
template <>
inline constexpr const char* law_name<kt::queued_dispatcher> = "the queued dispatcher";
template <>
inline constexpr const char* law_name<kt::thread_pool_dispatcher<2>> = "the thread pool dispatcher";
template <>
inline constexpr const char* law_name<kt::static_storage<rm_a, rm_b>> = "static storage";
template <>
inline constexpr const char* law_name<kt::inline_array_storage<4>> = "inline array storage";
template <>
inline constexpr const char* law_name<kt::dynamic_storage> = "dynamic storage";

inline constexpr auto law_dispatchers =
    boost::hana::tuple_t<kt::inline_dispatcher, kt::queued_dispatcher, kt::thread_pool_dispatcher<2>>;
inline constexpr auto law_storages =
    boost::hana::tuple_t<kt::static_storage<rm_a, rm_b>, kt::inline_array_storage<4>, kt::dynamic_storage>;

template <class F>
void for_each_law_world(F&& f) {
  namespace hana = boost::hana;
  hana::for_each(hana::cartesian_product(hana::make_tuple(law_dispatchers, law_storages)), [&](auto combination) {
    using D = typename decltype(+hana::at_c<0>(combination))::type;
    using S = typename decltype(+hana::at_c<1>(combination))::type;
    static_assert(kt::can_compose<kt::with_storage<S>, kt::with_dispatcher<D>>,
                  "every dispatcher composes with every storage");
    DYNAMIC_SECTION(law_name<D> << " with " << law_name<S>) {
      law_world<D, S> w;
      f(w);
    }
  });
}

}  // namespace ktm::test
