// tests/tm/storage_laws_test.cpp: the storage laws for every model, under
// every dispatcher (law_matrix.hpp), and the allocation law: this binary
// replaces the global operator new to count each thread's heap allocations.
#include "tests/tm/storage_laws.hpp"

#include <cstdint>
#include <cstdlib>
#include <new>

#include "tests/tm/law_matrix.hpp"

namespace {
// This thread's allocations: a synchronous commit runs in the client's
// thread, and other threads (a thread pool's workers, Catch) stay out of it.
thread_local std::uint64_t t_allocations = 0;

void* counted_alloc(std::size_t n, std::size_t align) {
  ++t_allocations;
  void* p = align <= alignof(std::max_align_t) ? std::malloc(n ? n : 1)
                                                : std::aligned_alloc(align, (n + align - 1) & ~(align - 1));
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

// The replaced global operator delete frees what the replaced operator new
// got from malloc; g++ 12 cannot see the pairing after inlining and warns.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace ktm::tm;
using namespace ktm::test;

namespace {
std::uint64_t allocations_so_far() { return t_allocations; }
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;
}  // namespace

TEST_CASE("every storage obeys the storage laws under every dispatcher") {
  for_each_law_world([](auto& w) { check_storage_laws(w.tm, w.a, w.b); });
}

TEST_CASE("static storage allocates nothing per transaction on a synchronous commit and rollback") {
  law_world<inline_dispatcher, static_storage<rm_a, rm_b>> w;
  CHECK(allocations_per_transactions(w.tm, w.a, w.b, allocations_so_far) == 0);
}

TEST_CASE("inline array storage allocates nothing per transaction on a synchronous commit and rollback") {
  law_world<inline_dispatcher, inline_array_storage<4>> w;
  CHECK(allocations_per_transactions(w.tm, w.a, w.b, allocations_so_far) == 0);
}

// The counter is live: dynamic storage allocates its enlistments per
// transaction (by design: any number of them, addresses stable).
TEST_CASE("the allocation counter sees dynamic storage allocate per transaction") {
  law_world<inline_dispatcher, dynamic_storage> w;
  CHECK(allocations_per_transactions(w.tm, w.a, w.b, allocations_so_far, 10) >= 20);
}

TEST_CASE("dynamic storage lets RMs come and go") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<> tm;
  REQUIRE(tm.add_resource_manager(a));
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE(tm.remove_resource_manager(a));
  auto tx2 = tm.begin();
  CHECK(tx2.enlist(a).code() == ktm::errc::rm_not_found);
  REQUIRE(tx.commit());  // the enlistment made before removal still completes
  CHECK(a.count(notify::commit) == 1);
  REQUIRE(tm.add_resource_manager(b));
  auto eb = tx2.enlist(b);
  CHECK(eb);
  CHECK(tx2.commit());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "static storage finds an RM by its type") {
  CHECK(&tm.storage().get<rm_b>() == &b);
  CHECK(static_storage<rm_a, rm_b>::rm_count == 2);
}
