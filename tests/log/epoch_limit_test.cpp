// Regression tests for the last epochs of a log (found by log_fuzzer): a
// valid base copy naming epoch 2^30 - 1 used to start a session with epoch
// 2^30, which wrote base copies and blocks that the next open rejected. The
// log then failed to reopen and lost the forced record it had acknowledged.
#include <catch2/catch.hpp>

#include <vector>

#include "ktm/log/crc32c.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using ktm::errc;
using ktm::test::as_bytes;
using ktm::test::memory_storage;
template <class R>
using rlog = ktm::log::log<memory_storage, R>;
namespace fmt = ktm::log::format;

namespace {

constexpr std::uint32_t last_epoch = (1u << 30) - 1;  // the largest valid epoch

// Sets the epoch of base copy `k` (both if k == 2) and fixes its checksum.
void forge_epoch(memory_storage& st, std::uint32_t e, int k = 2) {
  auto& b = ktm::test::bytes_of(st, "l.blf");
  for (int i = 0; i < 2; ++i) {
    if (k != 2 && k != i) continue;
    std::byte* p = b.data() + static_cast<std::size_t>(i) * fmt::base_copy_size;
    const std::uint32_t used = fmt::load32(p + fmt::bf::used);
    if (used < fmt::bf::header_size || used > fmt::base_copy_size) continue;
    fmt::store<std::uint32_t>(p + fmt::bf::epoch, e);
    fmt::store<std::uint32_t>(p + fmt::bf::crc, 0);
    fmt::store<std::uint32_t>(p + fmt::bf::crc, ktm::log::crc32c(p, used));
  }
}

// The slot holding the newest copy (the generations differ by one).
int newest_copy(memory_storage& st) {
  auto& b = ktm::test::bytes_of(st, "l.blf");
  return fmt::load64(b.data() + fmt::bf::generation) > fmt::load64(b.data() + fmt::base_copy_size + fmt::bf::generation)
             ? 0
             : 1;
}

// A log with stream "a" holding the forced record "x", closed.
memory_storage one_record_log() {
  memory_storage st;
  auto lg = ktm::log::log<memory_storage>::create(st, "l", ktm::test::small_log_options());
  auto s = lg->create_stream("a");
  REQUIRE(s->marshalling_area()->append(as_bytes("x"), record_type::data, append_flags::force));
  return st;
}

bool is_epoch_refusal(const ktm::failure& f) {
  return f.code == errc::corrupt_base_file && f.file == "l.blf" && f.where.what == ktm::position::kind::offset &&
         f.where.value == fmt::bf::epoch;
}

template <class R>
void reopen_reads(memory_storage& st, const std::vector<std::string>& want) {
  auto lg = rlog<R>::open(st, "l");
  REQUIRE(lg);
  auto s = lg->open_stream("a");
  REQUIRE(s);
  CHECK(ktm::test::read_all(*s) == want);
}

}  // namespace

TEST_CASE("a log reopened after a session at the last epoch keeps the records it acknowledged") {
  memory_storage st = one_record_log();
  forge_epoch(st, last_epoch - 1);  // the next session gets the last epoch
  lsn y;
  {
    auto lg = rlog<tolerate_corrupted_tail>::open(st, "l");
    REQUIRE(lg);
    auto ma = lg->open_stream("a")->marshalling_area();
    auto a = ma->append(as_bytes("y"), record_type::data, append_flags::force);
    REQUIRE(a);
    y = *a;
  }
  auto img = ktm::test::crash_image(st);
  reopen_reads<point_in_time>(img, {"x", "y"});
  reopen_reads<absolute_consistency>(img, {"x", "y"});
  reopen_reads<tolerate_corrupted_tail>(img, {"x", "y"});
  auto lg = rlog<point_in_time>::open(img, "l");
  REQUIRE(lg);
  auto r = lg->open_stream("a")->read_record(y);
  REQUIRE(r);
  CHECK(ktm::test::as_string(r->payload) == "y");
}

TEST_CASE("a log with no epoch left opens read-only; refuses every write and stays reopenable") {
  // the newest copy only (as the fuzzer found it), or both copies
  for (int k : {-1, 2}) {
    INFO((k == 2 ? "both copies" : "the newest copy") << " name the last epoch");
    memory_storage st = one_record_log();
    forge_epoch(st, last_epoch, k == 2 ? 2 : newest_copy(st));
    const std::vector<std::byte> base_before = ktm::test::bytes_of(st, "l.blf");
    {
      auto lg = rlog<tolerate_corrupted_tail>::open(st, "l");
      REQUIRE(lg);
      auto s = lg->open_stream("a");
      REQUIRE(s);
      CHECK(ktm::test::read_all(*s) == std::vector<std::string>{"x"});
      auto ma = s->marshalling_area();
      REQUIRE(ma);
      auto a = ma->append(as_bytes("y"), record_type::data, append_flags::force);
      REQUIRE_FALSE(a);
      CHECK(is_epoch_refusal(a.error()));
      auto q = ma->append(as_bytes("q"));
      REQUIRE_FALSE(q);
      CHECK(is_epoch_refusal(q.error()));
      auto ra = ma->write_restart_area(as_bytes("r"));
      REQUIRE_FALSE(ra);
      CHECK(is_epoch_refusal(ra.error()));
      auto rs = ma->reserve(1, 10);
      REQUIRE_FALSE(rs);
      CHECK(is_epoch_refusal(rs.error()));
      auto ab = s->advance_base(s->last_lsn());
      REQUIRE_FALSE(ab);
      CHECK(is_epoch_refusal(ab.error()));
      auto cs = lg->create_stream("b");
      REQUIRE_FALSE(cs);
      CHECK(is_epoch_refusal(cs.error()));
      auto ds = lg->delete_stream("a");
      REQUIRE_FALSE(ds);
      CHECK(is_epoch_refusal(ds.error()));
      auto ac = lg->add_container();
      REQUIRE_FALSE(ac);
      CHECK(is_epoch_refusal(ac.error()));
      CHECK(lg->flush_all());  // nothing to flush
      CHECK(lg->close());      // nothing to persist
    }
    // nothing was written: every later open sees the same log, in every mode
    CHECK(ktm::test::bytes_of(st, "l.blf") == base_before);
    reopen_reads<point_in_time>(st, {"x"});
    reopen_reads<absolute_consistency>(st, {"x"});
    reopen_reads<tolerate_corrupted_tail>(st, {"x"});
  }
}
