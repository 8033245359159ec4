// Creating a log is atomic for the caller (reliability matrix rows 1-3): a
// crash at any I/O call of create (before or after it; unflushed writes all
// lost or a seeded subset; directory operations durable per call or lost
// when not synced) leaves either a complete empty log or leftovers that open
// reports as errc::incomplete_log (errc::not_found when nothing is left),
// and a second create then succeeds and gives a working log. A completely
// created log is never replaced by a second create.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "ktm/io/direct_device.hpp"
#include "ktm/io/fault_injection.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log/container_set.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using flog = ktm::log::log<fstore>;
using mlog = ktm::log::log<memory_storage>;

namespace {

log_options options() {
  auto o = ktm::test::small_log_options();
  o.containers = 3;
  return o;
}

// Appends one forced record, reopens, and reads it back.
template <class Log, class Storage>
void check_works(Storage& st, const log_options& o) {
  {
    auto lg = Log::open(st, "l", o);
    INFO("open: " << (lg ? std::string("ok") : lg.error().message()));
    REQUIRE(lg);
    auto s = lg->create_stream("s");
    REQUIRE(s);
    auto ma = s->marshalling_area();
    REQUIRE(ma);
    REQUIRE(ma->append(as_bytes("first"), record_type::data, append_flags::force));
  }
  auto lg = Log::open(st, "l", o);
  REQUIRE(lg);
  auto s = lg->open_stream("s");
  REQUIRE(s);
  auto got = ktm::test::read_all(*s);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == "first");
}

// What one create calls, by kind.
ktm::io::call_counts create_calls(bool explicit_dir) {
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  if (explicit_dir) st.set_directory_sync(fstore::directory_sync::explicit_only);
  const auto before = st.controller()->counts();
  REQUIRE(flog::create(st, "l", options()));
  auto c = st.controller()->counts();
  for (std::size_t k = 0; k < ktm::io::call_kind_count; ++k) c.by_kind[k] -= before.by_kind[k];
  return c;
}

// A create crashed at call n of kind k; then the oracle. Returns whether the
// crash left a complete log.
bool crash_create_and_check(call_kind k, std::uint64_t n, bool after, const crash_spec& c, bool explicit_dir) {
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  if (explicit_dir) st.set_directory_sync(fstore::directory_sync::explicit_only);
  const auto crashes0 = st.controller()->crashes();
  st.controller()->crash_at(k, n, c, after);
  bool returned = false;
  {
    auto lg = flog::create(st, "l", options());
    returned = static_cast<bool>(lg);
  }
  st.controller()->clear_faults();
  REQUIRE(st.controller()->crashes() == crashes0 + 1);  // the crash did happen inside create
  bool complete = false;
  {
    auto opened = flog::open(st, "l", options());
    INFO("create " << (returned ? "returned" : "failed") << "; open: "
                   << (opened ? std::string("ok") : opened.error().message()));
    if (returned) REQUIRE(opened);  // an acknowledged create is never lost
    complete = static_cast<bool>(opened);
    if (opened) CHECK(opened->streams().empty());
    else CHECK((opened.code() == errc::not_found || opened.code() == errc::incomplete_log));
  }
  {
    auto again = flog::create(st, "l", options());
    INFO("create again: " << (again ? std::string("ok") : again.error().message()));
    if (complete) {
      REQUIRE_FALSE(again);
      CHECK(again.code() == errc::already_exists);
    } else {
      REQUIRE(again);
    }
  }
  check_works<flog>(st, options());
  return complete;
}

void crash_every_call(bool explicit_dir) {
  const auto calls = create_calls(explicit_dir);
  REQUIRE(calls.opens() >= 4);   // containers and the base file
  REQUIRE(calls.flushes() >= 4);
  int complete = 0, incomplete = 0;
  const call_kind kinds[] = {call_kind::open, call_kind::read, call_kind::write, call_kind::flush, call_kind::grow};
  for (call_kind k : kinds) {
    for (std::uint64_t n = 1; n <= calls.of(k); ++n) {
      for (bool after : {false, true}) {
        for (std::uint64_t seed = 0; seed < 4; ++seed) {
          crash_spec c;
          c.unflushed = seed == 0 ? crash_spec::writes::lost : crash_spec::writes::random_subset;
          c.unsynced_directory = seed % 2 == 0 ? crash_spec::writes::lost : crash_spec::writes::random_subset;
          c.seed = seed * 7919 + n;
          INFO("crash " << (after ? "after" : "before") << " call " << n << " of kind " << int(k) << ", seed "
                        << seed);
          (crash_create_and_check(k, n, after, c, explicit_dir) ? complete : incomplete)++;
        }
      }
    }
  }
  CHECK(complete > 0);    // a crash after the last flush leaves the complete log
  CHECK(incomplete > 0);  // earlier ones leave none
}

}  // namespace

TEST_CASE("a crash at any call of create leaves a complete log or one that is created again") {
  crash_every_call(false);
}

TEST_CASE("a crash at any call of create; with unsynced directory operations lost; leaves no half log") {
  crash_every_call(true);
}

TEST_CASE("a second create never replaces a completely created log") {
  memory_storage st;
  {
    auto lg = mlog::create(st, "l", options());
    REQUIRE(lg);
    auto s = lg->create_stream("s");
    REQUIRE(s->marshalling_area()->append(as_bytes("first"), record_type::data, append_flags::force));
  }
  auto again = mlog::create(st, "l", options());
  REQUIRE_FALSE(again);
  CHECK(again.code() == errc::already_exists);
  auto lg = mlog::open(st, "l", options());
  REQUIRE(lg);
  CHECK(ktm::test::read_all(*lg->open_stream("s")) == std::vector<std::string>{"first"});
}

TEST_CASE("a damaged base file holding data is not taken for leftovers") {
  memory_storage st;
  REQUIRE(mlog::create(st, "l", options()));
  ktm::test::zero_range(st, "l.blf", 0, 64);
  ktm::test::zero_range(st, "l.blf", format::base_copy_size, 64);
  auto lg = mlog::open(st, "l", options());
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::corrupt_base_file);
  auto again = mlog::create(st, "l", options());
  REQUIRE_FALSE(again);
  CHECK(again.code() == errc::already_exists);
}

TEST_CASE("over posix files; a zero-length base file left by a crashed create is no log; and create replaces it") {
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  using plog = ktm::log::log<ktm::io::posix_storage>;
  { std::ofstream(dir.file("l.blf")); }               // the leftovers: an empty base file
  { std::ofstream(dir.file("l.c0")) << "partial"; }  // and a container of the wrong size
  auto lg = plog::open(st, "l", options());
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::incomplete_log);
  REQUIRE(plog::create(st, "l", options()));
  CHECK_FALSE(st.exists(detail::staged_base_file_name("l")));
  check_works<plog>(st, options());
  auto again = plog::create(st, "l", options());
  REQUIRE_FALSE(again);
  CHECK(again.code() == errc::already_exists);
}

TEST_CASE("a staged base file without its rename is reported as an incomplete log") {
  memory_storage st;
  REQUIRE(mlog::create(st, "l", options()));
  REQUIRE_FALSE(st.rename("l.blf", detail::staged_base_file_name("l")));
  auto lg = mlog::open(st, "l", options());
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::incomplete_log);
  REQUIRE(mlog::create(st, "l", options()));
  check_works<mlog>(st, options());
}

TEST_CASE("over O_DIRECT files; an all-zero base file left by a crashed create is no log; and create replaces it") {
  ktm::test::temp_dir dir;
  ktm::io::direct_storage st(dir.path().string());
  using dlog = ktm::log::log<ktm::io::direct_storage>;
  auto o = ktm::test::medium_log_options();
  o.io_align = 4096;
  if (auto probe = st.open("probe", ktm::open_mode::create_new); !probe) {
    CHECK(probe.code() == errc::unsupported);
    WARN("O_DIRECT refused by the file system of " << dir.path() << ": not checked");
    return;
  }
  {  // a base file grown to its two copies and never written, and a staged one
    std::ofstream(dir.file("l.blf"), std::ios::binary) << std::string(2 * format::base_copy_size, '\0');
    std::ofstream(dir.file("l.blf.new"), std::ios::binary) << std::string(4096, '\0');
  }
  auto lg = dlog::open(st, "l", o);
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::incomplete_log);
  REQUIRE(dlog::create(st, "l", o));
  CHECK_FALSE(st.exists(detail::staged_base_file_name("l")));
  check_works<dlog>(st, o);
}
