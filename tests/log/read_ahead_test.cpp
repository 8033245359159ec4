// Forward reads bring the log in by windows of many blocks: every record
// still comes back once and in order, across window and container
// boundaries, and a damaged block inside a window stops the read where a
// reader of one block at a time would, with the same error.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ktm/log/format.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {

std::string payload(int i) { return "record " + std::to_string(i) + std::string(150 + i % 60, 'x'); }

// Appends n records, a block forced every 7 records (or each one).
std::vector<lsn> fill(stream<memory_storage>& s, int n, int force_every) {
  auto ma = s.marshalling_area();
  REQUIRE(ma);
  std::vector<lsn> ls;
  for (int i = 0; i < n; ++i) {
    const auto f = (i + 1) % force_every == 0 ? append_flags::force : append_flags::none;
    auto l = ma->append(as_bytes(payload(i)), record_type::data, f);
    REQUIRE(l);
    ls.push_back(*l);
  }
  return ls;
}

// A log of ktm::test::windowed_log_options() with one stream "tm" holding n records
// (fill(), a force every force_every records).
struct filled_log {
  filled_log(int n, int force_every) {
    REQUIRE(lg);
    REQUIRE(s);
    ls = fill(*s, n, force_every);
  }
  memory_storage st;
  ktm::result<mlog> lg = mlog::create(st, "l", ktm::test::windowed_log_options());
  ktm::result<stream<memory_storage>> s = lg->create_stream("tm");
  std::vector<lsn> ls;
};

}  // namespace

TEST_CASE("a forward read across read-ahead windows and containers returns every record once; in order") {
  filled_log f(30000, 7);
  auto& [st, lg, s, ls] = f;
  REQUIRE(ls.back().container() >= ls.front().container() + 2);  // more than two containers, several windows each

  for (std::size_t from : {std::size_t{0}, std::size_t{12345}}) {
    auto v = s->read_forward(from == 0 ? lsn::null() : ls[from]);
    std::size_t i = from;
    for (const auto& r : v) {
      REQUIRE(i < ls.size());
      CHECK(r.at == ls[i]);
      if (as_string(r.payload) != payload(static_cast<int>(i))) FAIL("payload of record " << i);
      ++i;
    }
    CHECK(i == ls.size());
    CHECK(v.status().code == errc::end_of_stream);
  }
}

TEST_CASE("a damaged block inside a read-ahead window stops a forward read there with the block-by-block error") {
  filled_log f(400, 1);
  auto& [st, lg, s, ls] = f;  // one block per record
  const int bad = 250;
  const lsn at = ls[bad];
  REQUIRE(at.record() == 0);
  const std::string file = ktm::test::container_file(*lg, at.container());
  REQUIRE(!file.empty());

  struct damage {
    std::size_t offset;  // in the block
    errc expected;
  };
  const std::size_t payload_byte = format::bh::size + format::rh::size + 3;
  for (auto d : {damage{payload_byte, errc::checksum_mismatch}, damage{0, errc::corrupt_record}}) {
    ktm::test::flip_bit(st, file, at.block_byte_offset() + d.offset, 2);
    auto v = s->read_forward();
    int n = 0;
    for (const auto& r : v) {
      CHECK(r.at == ls[static_cast<std::size_t>(n)]);
      ++n;
    }
    CHECK(n == bad);
    CHECK(v.status().code == d.expected);
    CHECK(v.status().where.value == at.raw());
    ktm::test::flip_bit(st, file, at.block_byte_offset() + d.offset, 2);  // repaired
    auto again = s->read_forward();
    std::size_t all = 0;
    for (const auto& r : again) all += r.payload.empty() ? 0 : 1;
    CHECK(all == ls.size());
    CHECK(again.ok());
  }
}

TEST_CASE("a long forward read stops at the third or fifth record of a block whose checksum fails; with the block's LSN") {
  filled_log f(9000, 7);
  auto& [st, lg, s, ls] = f;  // blocks of 7 records
  // the third and the fifth record of a block far into the log (records
  // are checked three at a time: the first failing one decides)
  for (std::uint32_t k : {2u, 4u}) {
    std::size_t bad = 7000;
    while (ls[bad].record() != k) ++bad;
    const lsn block = ls[bad].block_start();
    std::size_t first = bad - k;  // the block's first record
    REQUIRE(ls[first].block_start() == block);
    const std::string file = ktm::test::container_file(*lg, block.container());
    REQUIRE(!file.empty());
    // a byte of record k's payload, in the block's destriped body
    std::size_t body = format::bh::size;
    for (std::size_t i = first; i < bad; ++i) body += format::rh::size + payload(static_cast<int>(i)).size();
    body += format::rh::size + 5;
    const std::size_t raw = body / format::sector_body * format::sector_size + body % format::sector_body;
    ktm::test::flip_bit(st, file, block.block_byte_offset() + raw, 1);
    auto v = s->read_forward();
    std::size_t n = 0;
    for (const auto& r : v) {
      if (r.at != ls[n]) FAIL("record " << n);
      ++n;
    }
    CHECK(n == first);
    CHECK(v.status().code == errc::checksum_mismatch);
    CHECK(v.status().where.value == block.raw());
    ktm::test::flip_bit(st, file, block.block_byte_offset() + raw, 1);  // repaired
  }
}

TEST_CASE("long forward reads left midway do not disturb a later read") {
  filled_log f(20000, 7);
  auto& [st, lg, s, ls] = f;
  for (std::size_t stop_at : {std::size_t{4096}, std::size_t{4097}, std::size_t{10000}}) {
    auto v = s->read_forward();
    std::size_t n = 0;
    for (const auto& r : v) {
      CHECK(r.at == ls[n]);
      if (++n == stop_at) break;
    }
    CHECK(n == stop_at);
  }
  auto again = s->read_forward(ls[100]);
  std::size_t n = 100;
  for (const auto& r : again) {
    if (r.at != ls[n] || as_string(r.payload) != payload(static_cast<int>(n))) FAIL("record " << n);
    ++n;
  }
  CHECK(n == ls.size());
  CHECK(again.ok());
}
