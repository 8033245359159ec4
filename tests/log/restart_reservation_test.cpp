// Restart areas, reservations and flush_to_lsn.
#include <catch2/catch.hpp>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

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

TEST_CASE("queued records not flushed are lost in a crash, forced ones are not") {
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
