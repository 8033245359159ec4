// Appending and reading records: forward, backward, undo-next, multiplexed.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

TEST_CASE("records appended to a stream are read back forward in order") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  REQUIRE(lg);
  auto s = lg->create_stream("tm");
  REQUIRE(s);
  auto ma = s->marshalling_area();
  REQUIRE(ma);
  std::vector<lsn> ls;
  for (int i = 0; i < 100; ++i) {
    auto l = ma->append(as_bytes("record " + std::to_string(i)));
    REQUIRE(l);
    ls.push_back(*l);
  }
  for (std::size_t i = 1; i < ls.size(); ++i) CHECK(ls[i - 1] < ls[i]);
  auto v = s->read_forward();
  int i = 0;
  for (const auto& r : v) {
    CHECK(as_string(r.payload) == "record " + std::to_string(i));
    CHECK(r.at == ls[static_cast<std::size_t>(i)]);
    CHECK(r.previous == (i == 0 ? lsn::null() : ls[static_cast<std::size_t>(i - 1)]));
    CHECK(r.type == record_type::data);
    ++i;
  }
  CHECK(i == 100);
  CHECK(v.status().code == errc::end_of_stream);
}

TEST_CASE("reading backward follows previous LSNs to the start of the stream") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  for (int i = 0; i < 30; ++i) REQUIRE(ma->append(as_bytes(std::to_string(i))));
  std::vector<std::string> got;
  auto v = s->read_backward();
  for (const auto& r : v) got.push_back(as_string(r.payload));
  REQUIRE(got.size() == 30);
  CHECK(got.front() == "29");
  CHECK(got.back() == "0");
  CHECK(v.status().code == errc::end_of_stream);
}

TEST_CASE("the undo-next chain skips the records it is told to skip") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  auto a = ma->append(as_bytes("a"));
  auto b = ma->append(as_bytes("b"), record_type::data, append_flags::none, *a);
  auto c = ma->append(as_bytes("c"), record_type::data, append_flags::none, *a);
  REQUIRE((a && b && c));
  std::vector<std::string> got;
  for (const auto& r : s->read_undo_next(*c)) got.push_back(as_string(r.payload));
  CHECK(got == std::vector<std::string>{"c", "a"});
}

TEST_CASE("an undo-next link past the stream's last record is refused and nothing is appended") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto other = lg->create_stream("b");
  auto ma = s->marshalling_area();
  auto mb = other->marshalling_area();
  // no record yet: any link is forward
  CHECK(ma->append(as_bytes("x"), record_type::data, append_flags::none, lsn(0, 1, 0)).code() ==
        errc::invalid_argument);
  auto a = ma->append(as_bytes("a"));
  auto later = mb->append(as_bytes("b's"));  // above a's last record
  REQUIRE((a && later));
  auto refused = ma->append(as_bytes("y"), record_type::data, append_flags::force, *later);
  CHECK(refused.code() == errc::invalid_argument);
  CHECK(refused.error().where.value == later->raw());
  CHECK(s->last_lsn() == *a);
  // at or below the last record is a link
  auto c = ma->append(as_bytes("c"), record_type::data, append_flags::none, *a);
  REQUIRE(c);
  std::vector<std::string> got;
  for (const auto& r : s->read_forward()) got.push_back(as_string(r.payload));
  CHECK(got == std::vector<std::string>{"a", "c"});
}

TEST_CASE("streams of a multiplexed log keep their own records and chains") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s1 = lg->create_stream("one");
  auto s2 = lg->create_stream("two");
  REQUIRE((s1 && s2));
  CHECK(lg->create_stream("one").code() == errc::stream_exists);
  auto m1 = s1->marshalling_area();
  auto m2 = s2->marshalling_area();
  CHECK(s1->marshalling_area().code() == errc::writer_exists);
  for (int i = 0; i < 50; ++i) {
    REQUIRE(m1->append(as_bytes("1-" + std::to_string(i))));
    if (i % 2 == 0) REQUIRE(m2->append(as_bytes("2-" + std::to_string(i))));
  }
  auto r1 = ktm::test::read_all(*s1);
  auto r2 = ktm::test::read_all(*s2);
  REQUIRE(r1.size() == 50);
  REQUIRE(r2.size() == 25);
  CHECK(r1[49] == "1-49");
  CHECK(r2[24] == "2-48");
  int n = 0;
  for (const auto& r : s2->read_backward()) {
    CHECK(r.stream_id == s2->id());
    ++n;
  }
  CHECK(n == 25);
  CHECK(lg->streams() == std::vector<std::string>{"one", "two"});
  REQUIRE(lg->delete_stream("one"));
  CHECK(lg->open_stream("one").code() == errc::stream_not_found);
  CHECK(m1->append(as_bytes("x")).code() == errc::stream_not_found);
  CHECK(lg->streams() == std::vector<std::string>{"two"});
}

TEST_CASE("a dedicated log has exactly one stream") {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  o.dedicated = true;
  auto lg = mlog::create(st, "d", o);
  REQUIRE(lg);
  auto s = lg->default_stream();
  REQUIRE(s);
  CHECK(lg->create_stream("other").code() == errc::too_many_streams);
  auto ma = s->marshalling_area();
  REQUIRE(ma->append(as_bytes("x"), record_type::data, append_flags::force));
  lg = mlog::open(st, "d");
  REQUIRE(lg);
  CHECK(lg->dedicated());
  auto s2 = lg->default_stream();
  CHECK(ktm::test::read_all(*s2) == std::vector<std::string>{"x"});
}

TEST_CASE("a record larger than a block is refused") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  std::vector<std::byte> big(8192);
  CHECK(ma->append(big).code() == errc::record_too_large);
  std::vector<std::byte> fits(8192 / 512 * 504 - 64 - 32);
  CHECK(ma->append(fits));
  CHECK(ma->append(as_bytes("t"), record_type::restart).code() == errc::invalid_argument);
}

TEST_CASE("reading before the base and past the end are different conditions") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  auto a = ma->append(as_bytes("a"));
  auto b = ma->append(as_bytes("b"));
  REQUIRE(s->advance_base(*b));
  CHECK(s->read_record(*a).code() == errc::before_base);
  auto v = s->read_forward(*a);
  CHECK(v.begin() == v.end());
  CHECK(v.status().code == errc::before_base);
  auto back = s->read_backward();
  std::vector<std::string> got;
  for (const auto& r : back) got.push_back(as_string(r.payload));
  CHECK(got == std::vector<std::string>{"b"});
  CHECK(back.status().code == errc::before_base);
  auto past = s->read_forward(lsn(b->raw() + 1));
  CHECK(past.begin() == past.end());
  CHECK(past.status().code == errc::end_of_stream);
  CHECK(s->read_record(lsn(b->raw() + 1)).code() == errc::invalid_lsn);
  CHECK(s->advance_base(*a).code() == errc::invalid_argument);
}

TEST_CASE("a reader validates an LSN that names no record") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s1 = lg->create_stream("a");
  auto s2 = lg->create_stream("b");
  auto m1 = s1->marshalling_area();
  auto m2 = s2->marshalling_area();
  auto a = m1->append(as_bytes("a"));
  REQUIRE(m2->append(as_bytes("b")));
  auto c = m1->append(as_bytes("c"));
  CHECK(s2->read_record(*a).code() == errc::before_base);  // before s2's first record
  CHECK(s2->read_record(*c).code() == errc::invalid_lsn);  // another stream's record
  CHECK(s1->read_record(lsn::invalid()).code() == errc::invalid_lsn);
  CHECK(s1->read_record(lsn(a->raw() + 7)).code() == errc::invalid_lsn);
}

TEST_CASE("records survive close and reopen with their LSNs") {
  memory_storage st;
  std::vector<lsn> ls;
  {
    auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    for (int i = 0; i < 200; ++i) ls.push_back(*ma->append(as_bytes(std::string(static_cast<std::size_t>(i), 'x'))));
  }
  auto lg = mlog::open(st, "l");
  REQUIRE(lg);
  auto s = lg->open_stream("a");
  REQUIRE(s);
  CHECK(s->last_lsn() == ls.back());
  std::size_t i = 0;
  for (const auto& r : s->read_forward()) {
    CHECK(r.at == ls[i]);
    CHECK(r.payload.size() == i);
    ++i;
  }
  CHECK(i == 200);
  auto ma = s->marshalling_area();
  auto l = ma->append(as_bytes("after"));
  REQUIRE(l);
  CHECK(*l > ls.back());
  auto rec = s->read_record(*l);
  REQUIRE(rec);
  CHECK(rec->previous == ls.back());
}
