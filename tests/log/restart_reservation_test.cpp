// Restart areas, reservations and flush_to_lsn.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {
// The most bytes one reserved record can have in the log as it is now
// (found by halving; every trial reservation is released).
std::int64_t largest_reservation(marshalling_area<memory_storage>& ma) {
  std::int64_t most = 0;
  for (std::int64_t b = 1 << 17; b > 0; b /= 2)
    if (ma.reserve(1, most + b)) {
      REQUIRE(ma.reserve(-1, -(most + b)));
      most += b;
    }
  return most;
}
}  // namespace

TEST_CASE("a stream without restart areas says so") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  CHECK(s->read_restart_area().code() == errc::no_restart_area);
}

TEST_CASE("restart areas are read latest first and back along their chain") {
  memory_storage st;
  lsn r1, r2, data;
  {
    auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    REQUIRE(ma->append(as_bytes("old")));
    data = *ma->append(as_bytes("keep"));
    r1 = *ma->write_restart_area(as_bytes("first"));
    REQUIRE(ma->append(as_bytes("more")));
    r2 = *ma->write_restart_area(as_bytes("second"), data);
    CHECK(s->base_lsn() == data);
    auto ra = s->read_restart_area();
    REQUIRE(ra);
    CHECK(ra->at == r2);
    CHECK(as_string(ra->data) == "second");
    CHECK(ra->new_base == data);
    auto prev = s->read_previous_restart_area(*ra);
    REQUIRE(prev);
    CHECK(prev->at == r1);
    CHECK(as_string(prev->data) == "first");
    CHECK(s->read_previous_restart_area(*prev).code() == errc::no_restart_area);
    // restart areas are records of the stream, of type restart
    int restarts = 0, all = 0;
    for (const auto& r : s->read_forward(data)) {
      ++all;
      restarts += r.type == record_type::restart;
    }
    CHECK(all == 4);
    CHECK(restarts == 2);
  }
  // restart areas are forced: they survive a reopen without close
  auto lg = mlog::open(st, "l");
  auto s = lg->open_stream("a");
  auto ra = s->read_restart_area();
  REQUIRE(ra);
  CHECK(ra->at == r2);
  CHECK(s->base_lsn() == data);
  CHECK(s->write_restart_area(as_bytes("x"), lsn(data.raw() - 1)).code() == errc::invalid_argument);
}

TEST_CASE("a restart area written before a crash is found by the scan") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  auto a = ma->append(as_bytes("a"));
  auto b = ma->append(as_bytes("b"));
  auto r = ma->write_restart_area(as_bytes("R"), *b);
  REQUIRE(r);
  auto img = ktm::test::crash_image(st);  // no close: base file still old
  auto lg2 = mlog::open(img, "l");
  REQUIRE(lg2);
  auto s2 = lg2->open_stream("a");
  CHECK(s2->base_lsn() == *b);
  auto ra = s2->read_restart_area();
  REQUIRE(ra);
  CHECK(ra->at == *r);
  CHECK(s2->read_record(*a).code() == errc::before_base);
}

TEST_CASE("use-reservation appends need enough reserved and release it") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  CHECK(ma->append(as_bytes("x"), record_type::data, append_flags::use_reservation).code() ==
        errc::reservation_exceeded);
  REQUIRE(ma->reserve(2, 20));
  CHECK(ma->reserved_records() == 2);
  CHECK(ma->append(as_bytes("0123456789"), record_type::data, append_flags::use_reservation));
  CHECK(ma->reserved_bytes() == 10);
  CHECK(ma->append(as_bytes("0123456789A"), record_type::data, append_flags::use_reservation).code() ==
        errc::reservation_exceeded);
  CHECK(ma->reserve(-2, -10).code() == errc::invalid_argument);  // more than held
  REQUIRE(ma->reserve(-1, -10));  // negative reservation releases
  CHECK(ma->reserved_records() == 0);
  CHECK(ma->reserved_bytes() == 0);
}

TEST_CASE("reservations beyond the log's room are refused with log_full") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  CHECK(ma->reserve(1, 1 << 20).code() == errc::log_full);
  REQUIRE(ma->reserve(1, 60000));
  // the reserved room is kept for the reservation: ordinary appends hit log_full first
  std::vector<std::byte> rec(4000);
  ktm::result<lsn> r = lsn::null();
  int n = 0;
  while ((r = ma->append(rec)) && n < 100) ++n;
  CHECK(r.code() == errc::log_full);
  CHECK(n < 20);
}

TEST_CASE("reserved records fit once ordinary appends have filled the log; forced or not") {
  // The log's room is taken by the open block's bytes so far and by each
  // record's sectors, trailers and the seal's rounding; a forced record
  // seals a block of its own. Every reserved append must still fit.
  int failed = 0, cases = 0;
  for (const std::uint32_t align : {512u, 4096u})
    for (const std::size_t size : {std::size_t{0}, std::size_t{100}, std::size_t{504}, std::size_t{1000},
                                   std::size_t{7000}})
      for (const std::size_t fill : {std::size_t{1}, std::size_t{100}, std::size_t{3000}, std::size_t{5000}})
        for (const bool force : {false, true}) {
          memory_storage st;
          log_options o;
          o.block_size = 8192;
          o.container_size = 65536;
          o.io_align = align;
          auto lg = mlog::create(st, "l", o);
          REQUIRE(lg);
          auto s = lg->create_stream("a");
          auto ma = s->marshalling_area();
          constexpr int n = 6;
          REQUIRE(ma->reserve(n, static_cast<std::int64_t>(n * size)));
          const std::vector<std::byte> filler(fill);
          ktm::result<lsn> r = lsn::null();
          while ((r = ma->append(filler))) {
          }
          CHECK(r.code() == errc::log_full);
          const std::vector<std::byte> rec(size);
          const append_flags flags =
              force ? append_flags::use_reservation | append_flags::force : append_flags::use_reservation;
          for (int i = 0; i < n; ++i) failed += ma->append(rec, record_type::data, flags) ? 0 : 1;
          CHECK(ma->reserved_records() == 0);
          ++cases;
        }
  CHECK(cases == 80);
  CHECK(failed == 0);
}

TEST_CASE("reserved appends never find the log full; among random appends and forces of two writers") {
  int reserved_appends = 0, failed = 0;
  for (std::uint64_t seed = 1; seed <= 150; ++seed) {
    std::mt19937_64 rng(seed);
    memory_storage st;
    log_options o;
    o.block_size = rng() % 2 ? 8192 : 16384;
    o.container_size = 65536 * static_cast<std::uint32_t>(1 + rng() % 2);
    o.io_align = rng() % 2 ? 512 : 4096;
    auto lg = mlog::create(st, "l", o);
    REQUIRE(lg);
    auto s1 = lg->create_stream("a");
    auto s2 = lg->create_stream("b");
    auto m1 = s1->marshalling_area();
    auto m2 = s2->marshalling_area();
    marshalling_area<memory_storage>* writers[2] = {&*m1, &*m2};
    std::vector<std::size_t> held[2];  // the sizes each writer has reserved and not used
    const auto size = [&rng](std::size_t small, std::size_t large) {
      return static_cast<std::size_t>(rng() % 3 ? rng() % small : rng() % large);
    };
    for (int step = 0; step < 300; ++step) {
      const std::size_t w = rng() % 2;
      const auto op = rng() % 10;
      if (op < 2) {
        const int k = 1 + static_cast<int>(rng() % 4);
        std::vector<std::size_t> sizes;
        std::int64_t total = 0;
        for (int i = 0; i < k; ++i) {
          sizes.push_back(size(200, 7000));
          total += static_cast<std::int64_t>(sizes.back());
        }
        if (writers[w]->reserve(k, total)) held[w].insert(held[w].end(), sizes.begin(), sizes.end());
      } else if (op < 5 && !held[w].empty()) {
        const std::size_t i = rng() % held[w].size();
        const std::vector<std::byte> rec(held[w][i]);
        held[w].erase(held[w].begin() + static_cast<std::ptrdiff_t>(i));
        const append_flags flags =
            rng() % 2 ? append_flags::use_reservation | append_flags::force : append_flags::use_reservation;
        ++reserved_appends;
        failed += writers[w]->append(rec, record_type::data, flags) ? 0 : 1;
      } else {
        const std::vector<std::byte> rec(size(300, 7000));
        (void)writers[w]->append(rec, record_type::data, rng() % 4 == 0 ? append_flags::force : append_flags{});
      }
    }
  }
  CHECK(reserved_appends > 5000);
  CHECK(failed == 0);
}

TEST_CASE("a reservation adds up and releases in parts; and the room comes back") {
  memory_storage st;
  log_options o;
  o.block_size = 8192;
  o.container_size = 65536;
  auto lg = mlog::create(st, "l", o);
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  // what one large reservation takes, found by how much of it fits
  const std::int64_t most = largest_reservation(*ma);
  REQUIRE(most > 40000);
  REQUIRE(ma->reserve(1, most));
  CHECK(ma->reserve(1, 0).code() == errc::log_full);
  REQUIRE(ma->reserve(-1, -most / 2));
  REQUIRE(ma->reserve(1, most / 4));  // released room is reusable
  CHECK(ma->reserved_records() == 1);
  REQUIRE(ma->reserve(-1, -(most - most / 2 + most / 4)));
  CHECK(ma->reserved_bytes() == 0);
  REQUIRE(ma->reserve(1, most));  // all of it back
}

TEST_CASE("flush_to_lsn makes records durable and returns the next unflushed LSN") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  auto dev = st.open("l.c0", ktm::open_mode::open_existing);
  auto a = ma->append(as_bytes("a"));
  auto b = ma->append(as_bytes("b"));
  CHECK(lg->durable_lsn() <= *a);
  const auto before = dev->flush_count();
  auto n = ma->flush_to_lsn(*a);
  REQUIRE(n);
  CHECK(*n > *b);  // both were in the same block
  CHECK(lg->durable_lsn() == *n);
  CHECK(dev->flush_count() == before + 1);
  // already durable: no I/O
  REQUIRE(ma->flush_to_lsn(*b));
  CHECK(dev->flush_count() == before + 1);
  auto img = ktm::test::crash_image(st);
  auto lg2 = mlog::open(img, "l");
  auto s2 = lg2->open_stream("a");
  CHECK(ktm::test::read_all(*s2) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("queued records not flushed are lost in a crash; forced ones are not") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  REQUIRE(ma->append(as_bytes("forced"), record_type::data, append_flags::force));
  REQUIRE(ma->append(as_bytes("queued")));
  auto img = ktm::test::crash_image(st);
  auto lg2 = mlog::open(img, "l");
  auto s2 = lg2->open_stream("a");
  CHECK(ktm::test::read_all(*s2) == std::vector<std::string>{"forced"});
  CHECK_FALSE(lg2->recovery_report().damaged);
}

TEST_CASE("destroying a marshalling area releases its reservation so a new area on the stream can reserve that room again") {
  memory_storage st;
  log_options o;
  o.block_size = 8192;
  o.container_size = 65536;
  auto lg = mlog::create(st, "l", o);
  REQUIRE(lg);
  auto s = lg->create_stream("a");
  auto other = lg->create_stream("b");
  REQUIRE(s);
  REQUIRE(other);
  auto mb = other->marshalling_area();  // a writer of another stream, to probe the log's room
  REQUIRE(mb);
  std::int64_t most = 0;
  {
    auto ma = s->marshalling_area();
    REQUIRE(ma);
    most = largest_reservation(*ma);
    REQUIRE(most > 40000);
    REQUIRE(ma->reserve(1, most));
    CHECK(ma->reserved_records() == 1);
    CHECK(ma->reserved_bytes() == most);
    // while it holds the room: no second area on the stream, and no writer
    // can reserve that room, nor any
    CHECK(s->marshalling_area().code() == errc::writer_exists);
    CHECK(mb->reserve(1, most).code() == errc::log_full);
    CHECK(mb->reserve(1, 0).code() == errc::log_full);
  }  // destroyed still holding its reservation
  // the room is the log's again: another writer can take it, and give it back
  REQUIRE(mb->reserve(1, most));
  REQUIRE(mb->reserve(-1, -most));
  // a new area on the same stream starts with nothing reserved and can
  // reserve the same room, and no more than it
  auto again = s->marshalling_area();
  REQUIRE(again);
  CHECK(again->reserved_records() == 0);
  CHECK(again->reserved_bytes() == 0);
  REQUIRE(again->reserve(1, most));
  CHECK(again->reserve(1, 0).code() == errc::log_full);
  CHECK(mb->reserve(1, 0).code() == errc::log_full);
  // and it holds a reservation it can append from
  CHECK(again->append(as_bytes("compensation"), record_type::data, append_flags::use_reservation));
  CHECK(again->reserved_records() == 0);
  CHECK(again->reserved_bytes() == most - 12);
}
