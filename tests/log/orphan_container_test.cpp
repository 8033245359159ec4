// Container files no base copy names any more: a removal interrupted between
// its base-file write and the file's deletion (the next open deletes the
// file), or whose deletion failed (tried again at close).
#include <catch2/catch.hpp>

#include <string>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using ktm::io::fault;
using ktm::io::persistence;
using flog = ktm::log::log<fstore, tolerate_corrupted_tail>;

namespace {

log_options three_containers() {
  auto o = ktm::test::small_log_options();
  o.containers = 3;
  o.max_containers = 4;
  return o;
}

// A log with three containers and a few forced records in its first one.
fstore make_log(std::shared_ptr<fault_controller> ctl) {
  fstore st(memory_storage(), std::move(ctl));
  auto lg = flog::create(st, "l", three_containers());
  REQUIRE(lg);
  auto s = lg->create_stream("s");
  REQUIRE(s);
  auto ma = s->marshalling_area();
  REQUIRE(ma);
  for (int i = 0; i < 3; ++i) REQUIRE(ma->append(as_bytes("r" + std::to_string(i)), record_type::data, append_flags::force));
  REQUIRE(lg->close());
  return st;
}

void check_records_intact(flog& lg) {
  auto s = lg.open_stream("s");
  REQUIRE(s);
  CHECK(ktm::test::read_all(*s) == std::vector<std::string>{"r0", "r1", "r2"});
}

}  // namespace

TEST_CASE("an open deletes the container file a crashed removal left behind") {
  auto ctl = std::make_shared<fault_controller>();
  auto st = make_log(ctl);
  {
    auto lg = flog::open(st, "l", three_containers());
    REQUIRE(lg);
    fault f;
    f.kinds = call_kind::remove;
    f.device = "l.c2";
    f.nth = 1;
    f.what = fault::action::crash_before;  // the base file no longer names it; the file stays
    ctl->inject(f);
    CHECK(lg->remove_container(2).code() == errc::device_failed);
  }
  REQUIRE(st.exists("l.c2"));
  auto lg = flog::open(st, "l", three_containers());
  REQUIRE(lg);
  CHECK(lg->recovery_report().orphans_removed == 1);
  CHECK_FALSE(st.exists("l.c2"));
  CHECK(lg->containers().size() == 2);
  check_records_intact(*lg);
  // the log still grows: a new container takes a fresh number
  REQUIRE(lg->add_container());
  CHECK(lg->containers().size() == 3);
}

TEST_CASE("a removal that failed with EIO is tried again when the log closes") {
  auto ctl = std::make_shared<fault_controller>();
  auto st = make_log(ctl);
  {
    auto lg = flog::open(st, "l", three_containers());
    REQUIRE(lg);
    const auto id = ctl->fail_nth(call_kind::remove, 1, errc::io_error, persistence::once);
    CHECK(lg->remove_container(2).code() == errc::io_error);
    CHECK(ctl->fired(id) == 1);
    CHECK(lg->containers().size() == 2);  // no longer part of the log
    CHECK(st.exists("l.c2"));
    REQUIRE(lg->close());
    CHECK_FALSE(st.exists("l.c2"));
  }
  auto lg = flog::open(st, "l", three_containers());
  REQUIRE(lg);
  CHECK(lg->recovery_report().orphans_removed == 0);
  check_records_intact(*lg);
}

TEST_CASE("an orphan that cannot be deleted costs its space and stops nothing") {
  auto ctl = std::make_shared<fault_controller>();
  auto st = make_log(ctl);
  const auto id = ctl->fail_nth(call_kind::remove, 1, errc::io_error, persistence::persistent);
  {
    auto lg = flog::open(st, "l", three_containers());
    REQUIRE(lg);
    CHECK(lg->remove_container(2).code() == errc::io_error);
    CHECK(lg->close());  // the second try fails as well
    CHECK(ctl->fired(id) >= 2);
  }
  auto lg = flog::open(st, "l", three_containers());
  REQUIRE(lg);
  CHECK(lg->recovery_report().orphans_removed == 0);
  CHECK(st.exists("l.c2"));
  CHECK(lg->containers().size() == 2);
  check_records_intact(*lg);
}

TEST_CASE("a clean removal leaves nothing for the next open to delete") {
  auto ctl = std::make_shared<fault_controller>();
  auto st = make_log(ctl);
  {
    auto lg = flog::open(st, "l", three_containers());
    REQUIRE(lg);
    REQUIRE(lg->remove_container(2));
    CHECK_FALSE(st.exists("l.c2"));
  }
  const auto removes = ctl->counts().removes();
  auto lg = flog::open(st, "l", three_containers());
  REQUIRE(lg);
  CHECK(lg->recovery_report().orphans_removed == 0);
  CHECK(ctl->counts().removes() == removes);
  check_records_intact(*lg);
}
