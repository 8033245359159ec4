// Tail management: base advance, container recycling, log full, tail pinned.
#include <catch2/catch.hpp>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using ktm::errc;
using ktm::test::as_bytes;
using ktm::test::memory_storage;
using mlog = ktm::log::log<memory_storage>;

namespace {
std::vector<std::byte> rec(std::size_t n) { return std::vector<std::byte>(n, std::byte{'r'}); }
}  // namespace

TEST_CASE("a log without tail advance fills up with log_full") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  ktm::result<lsn> r = lsn::null();
  int n = 0;
  while ((r = ma->append(rec(3000))) && n < 1000) ++n;
  CHECK(r.code() == errc::log_full);
  CHECK(r.error().file == "a");  // names the stream holding the tail
  CHECK(n > 20);
  CHECK(n < 45);
}

TEST_CASE("advancing the base recycles containers so the log never fills") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  std::uint32_t max_container = 0;
  for (int i = 0; i < 500; ++i) {
    auto r = ma->append(rec(3000));
    REQUIRE(r);
    max_container = std::max(max_container, r->container());
    REQUIRE(s->advance_base(*r));
  }
  CHECK(max_container > 10);  // many logical containers on two physical ones
  CHECK(lg->containers().size() == 2);
  CHECK(ktm::test::read_all(*s).size() == 1);
  // and the log reopens with the same content after a crash
  auto img = ktm::test::crash_image(st);
  *ma = ktm::log::marshalling_area<memory_storage>();
  auto lg2 = mlog::open(img, "l");
  REQUIRE(lg2);
}

TEST_CASE("a full log grows by containers up to the maximum") {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  o.grow = true;
  o.max_containers = 4;
  auto lg = mlog::create(st, "l", o);
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  ktm::result<lsn> r = lsn::null();
  int n = 0;
  while ((r = ma->append(rec(3000))) && n < 1000) ++n;
  CHECK(r.code() == errc::log_full);
  CHECK(lg->containers().size() == 4);
  CHECK(st.exists("l.c3"));
  CHECK(n > 60);
  auto lg2 = mlog::open(st, "l");  // the base file knows the new containers
  REQUIRE(lg2);
}

TEST_CASE("the log-full callback lets clients advance their tails") {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  std::optional<ktm::log::stream<memory_storage>> s;
  lsn last;
  int calls = 0;
  o.on_full = [&](const log_full_info& fi) {
    ++calls;
    CHECK(fi.pinning_stream == "a");
    return static_cast<bool>(s->advance_base(last));
  };
  auto lg = mlog::create(st, "l", o);
  s = *lg->create_stream("a");
  auto ma = s->marshalling_area();
  for (int i = 0; i < 200; ++i) {
    auto r = ma->append(rec(3000));
    REQUIRE(r);
    last = *r;
  }
  CHECK(calls > 0);
}

TEST_CASE("a tail pinned by an old record is reported with its stream and LSN") {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  std::optional<ktm::log::stream<memory_storage>> busy;
  lsn last;
  o.on_full = [&](const log_full_info&) { return static_cast<bool>(busy->advance_base(last)); };
  auto lg = mlog::create(st, "l", o);
  auto old = lg->create_stream("old");
  busy = *lg->create_stream("busy");
  auto mo = old->marshalling_area();
  auto pin = mo->append(as_bytes("pinning record"));
  REQUIRE(pin);
  auto mb = busy->marshalling_area();
  ktm::result<lsn> r = lsn::null();
  int n = 0;
  while ((r = mb->append(rec(3000))) && n < 1000) {
    last = *r;
    ++n;
  }
  CHECK(r.code() == errc::tail_pinned);
  CHECK(r.error().file == "old");
  CHECK(r.error().where.what == ktm::position::kind::lsn);
  CHECK(r.error().where.value == pin->raw());
  // once the old stream lets go, appends work again
  REQUIRE(old->advance_base(lsn(pin->raw() + 1)));
  CHECK(mb->append(rec(3000)));
}

TEST_CASE("containers are added and removed; never below two or while active") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  CHECK(lg->remove_container(1).code() == errc::too_few_containers);
  REQUIRE(lg->add_container());
  CHECK(lg->containers().size() == 3);
  CHECK(lg->remove_container(0).code() == errc::container_in_use);
  REQUIRE(lg->remove_container(2));
  CHECK_FALSE(st.exists("l.c2"));
  CHECK(lg->containers().size() == 2);
  auto lg2 = mlog::open(st, "l");
  REQUIRE(lg2);
  CHECK(lg2->containers().size() == 2);
}
