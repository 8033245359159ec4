// The worked example of doc/log_format.md, built with the API: log "ex"
// (blocks of 1024, containers of 4096, io_align 512), streams "tm" and
// "rm", then tm "begin", rm "undo", tm "commit" forced. Its container ex.c0
// must hold the bytes the example shows, field by field.
//
// The log id is random at create, so it and the two CRCs over it (the
// container header's and the block header's) cannot match the example's;
// for those the test checks that they are consistent: one log id in the
// base file, the container header and the block header, and each CRC
// recomputed here (with a bitwise CRC32C of its own, not the library's).
// The record CRCs do not cover the log id and must match the example
// exactly. Then every byte of ex.c0 is compared with the example's dump
// (copied below from the doc verbatim; keep the two in step), the lines
// it leaves out being zero.
#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {

// doc/log_format.md, "Worked example", the dump as written there.
constexpr std::string_view doc_dump = R"(ex.c0 container header
0000: 4b 54 4d 4c 4f 47 43 00 01 00 00 00 4c 5c fd d8   "KTMLOGC\0", version 1, CRC
0010: ac e3 6c a7 7a c0 80 00 00 00 00 00 00 00 00 00   log id; physical 0; logical 0
0020: 01 00 00 00 00 00 00 00 00 10 00 00 01 00 00 00   first seq 1; size 4096; epoch 1
block at 0x200 (sector 1), header:
0200: 4b 54 4d 42 01 00 03 00 01 00 00 00 00 00 00 00   "KTMB", v1, 3 records, seq 1
0210: 00 00 00 00 00 00 00 00 ac e3 6c a7 7a c0 80 00   durable seq 0; log id
0220: 00 00 00 00 01 00 00 00 01 00 00 00 af 00 00 00   container 0, offset 1, 1 sector, 175 bytes used
0230: 01 00 00 00 00 00 00 00 00 00 00 00 41 32 1e fe   epoch 1; zero; header CRC
record 0:1:0
0240: 05 00 00 00 01 00 00 00 01 00 00 00 00 00 00 00   length 5, stream 1, type 1, no 0, prev 0
0250: 00 00 00 00 00 00 00 00 00 00 00 00 b6 b5 33 d6   undo-next 0; CRC
0260: 62 65 67 69 6e                                    "begin"
record 0:1:1 (header at 0x265)
0260:                04 00 00 00 02 00 00 00 01 00 01   length 4, stream 2, type 1, no 1
0270: (prev 0, undo-next 0: zero)
0280: 00 16 5f 60 cc 75 6e 64 6f                        CRC; "undo"
record 0:1:2 (header at 0x289)
0280:                            06 00 00 00 01 00 00   length 6, stream 1
0290: 00 01 00 02 00 00 02 00 00 00 00 00 00 00 00 00   type 1, no 2, prev = 0x200 (0:1:0)
02a0: 00 00 00 00 00 fc b3 c6 5e 63 6f 6d 6d 69 74 00   undo-next 0; CRC; "commit"; padding
03f0: 00 00 00 00 00 00 00 00 84 d7 85 5c 00 00 03 00   trailer: stamp, index 0, first|last
)";

constexpr std::size_t container_size = 4096;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The dump as a container image: "OOOO: " then up to 16 bytes in fixed
// columns (blank columns: bytes another line shows), a comment after
// column 56; lines without an offset are captions. Bytes no line shows are
// zero ("Zero lines are left out"). `shown` marks the bytes lines show.
struct dump_image {
  std::vector<std::uint8_t> bytes = std::vector<std::uint8_t>(container_size, 0);
  std::vector<bool> shown = std::vector<bool>(container_size, false);
};
dump_image parse_dump(std::string_view text) {
  dump_image d;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 6 || line[4] != ':') continue;  // a caption
    std::size_t base = 0;
    for (int i = 0; i < 4; ++i) {
      const int v = hex_digit(line[static_cast<std::size_t>(i)]);
      REQUIRE(v >= 0);
      base = base * 16 + static_cast<std::size_t>(v);
    }
    if (line.compare(6, 1, "(") == 0) {  // a line of zeroes, said in words
      for (std::size_t k = 0; k < 16; ++k) d.shown[base + k] = true;
      continue;
    }
    for (std::size_t k = 0; k < 16; ++k) {
      const std::size_t col = 6 + 3 * k;
      if (col + 2 > line.size()) break;
      const int hi = hex_digit(line[col]), lo = hex_digit(line[col + 1]);
      if (hi < 0 || lo < 0) {
        REQUIRE(line.compare(col, 2, "  ") == 0);  // a blank column, never half a byte
        continue;
      }
      REQUIRE(base + k < container_size);
      CHECK_FALSE(d.shown[base + k]);  // no byte shown twice
      d.bytes[base + k] = static_cast<std::uint8_t>(hi * 16 + lo);
      d.shown[base + k] = true;
    }
  }
  return d;
}

// CRC32C (Castagnoli, reflected polynomial 0x82f63b78), bit by bit.
std::uint32_t crc32c_bitwise(std::span<const std::uint8_t> data) {
  std::uint32_t c = 0xffffffffu;
  for (std::uint8_t b : data) {
    c ^= b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
  }
  return ~c;
}
// The CRC of bytes [from, to) of `b`, with the 4-byte field at `zeroed` (absolute) taken as zero.
std::uint32_t crc_with_field_zero(const std::vector<std::uint8_t>& b, std::size_t from, std::size_t to,
                                  std::size_t zeroed) {
  std::vector<std::uint8_t> v(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(to));
  for (std::size_t i = 0; i < 4; ++i) v[zeroed - from + i] = 0;
  return crc32c_bitwise(v);
}

// Little-endian fields of a byte image.
std::uint64_t le(const std::vector<std::uint8_t>& b, std::size_t off, std::size_t size) {
  std::uint64_t v = 0;
  for (std::size_t i = size; i-- > 0;) v = (v << 8) | b.at(off + i);
  return v;
}
std::string text(const std::vector<std::uint8_t>& b, std::size_t off, std::size_t size) {
  return std::string(b.begin() + static_cast<std::ptrdiff_t>(off), b.begin() + static_cast<std::ptrdiff_t>(off + size));
}
bool all_zero(const std::vector<std::uint8_t>& b, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i)
    if (b.at(i) != 0) return false;
  return true;
}

std::vector<std::uint8_t> file_bytes(memory_storage& st, std::string_view name) {
  const auto& b = ktm::test::bytes_of(st, name);
  std::vector<std::uint8_t> v(b.size());
  for (std::size_t i = 0; i < b.size(); ++i) v[i] = static_cast<std::uint8_t>(b[i]);
  return v;
}

}  // namespace

TEST_CASE("the bitwise CRC32C of this test is the standard one") {
  const std::string_view check = "123456789";
  std::vector<std::uint8_t> v(check.begin(), check.end());
  CHECK(crc32c_bitwise(v) == 0xe3069283u);  // the CRC-32C check value
}

TEST_CASE("the worked example of the log format doc is the bytes the API writes for it") {
  memory_storage st;
  log_options o;
  o.block_size = 1024;
  o.container_size = container_size;
  o.io_align = 512;
  auto lg = mlog::create(st, "ex", o);
  REQUIRE(lg);
  auto tm = lg->create_stream("tm");
  auto rm = lg->create_stream("rm");
  REQUIRE(tm);
  REQUIRE(rm);
  CHECK(tm->id() == 1);
  CHECK(rm->id() == 2);
  auto tma = tm->marshalling_area();
  auto rma = rm->marshalling_area();
  REQUIRE(tma);
  REQUIRE(rma);
  auto l0 = tma->append("begin");
  auto l1 = rma->append("undo");
  auto l2 = tma->append("commit", record_type::data, append_flags::force);
  REQUIRE(l0);
  REQUIRE(l1);
  REQUIRE(l2);
  // "LSNs 0:1:0, 0:1:1, 0:1:2 (raw 0x200, 0x201, 0x202)"
  CHECK(l0->to_string() == "0:1:0");
  CHECK(l1->to_string() == "0:1:1");
  CHECK(l2->to_string() == "0:1:2");
  CHECK(l0->raw() == 0x200);
  CHECK(l1->raw() == 0x201);
  CHECK(l2->raw() == 0x202);

  const std::vector<std::uint8_t> c = file_bytes(st, "ex.c0");
  REQUIRE(c.size() == container_size);
  const std::vector<std::uint8_t> blf = file_bytes(st, "ex.blf");
  REQUIRE(blf.size() == 2 * 65536);
  const dump_image doc = parse_dump(doc_dump);

  // The log id: random, so only consistent. The base file names it (both
  // copies, at offset 24), and so do the container and block headers.
  const std::uint64_t log_id = le(blf, 24, 8);
  CHECK(log_id != 0);
  CHECK(le(blf, 65536 + 24, 8) == log_id);

  SECTION("the container header") {
    CHECK(text(c, 0, 8) == std::string("KTMLOGC\0", 8));  // magic
    CHECK(le(c, 8, 4) == 1);                                 // version
    CHECK(le(c, 12, 4) == crc_with_field_zero(c, 0, 64, 12));  // CRC of [0, 64), this field zero
    CHECK(le(c, 16, 8) == log_id);
    CHECK(le(c, 24, 4) == 0);     // physical 0
    CHECK(le(c, 28, 4) == 0);     // logical 0
    CHECK(le(c, 32, 8) == 1);     // first seq 1
    CHECK(le(c, 40, 4) == 4096);  // size 4096
    CHECK(le(c, 44, 4) == 1);     // epoch 1
    CHECK(all_zero(c, 48, 64));
    CHECK(all_zero(c, 64, 0x200));  // the rest of the header's io_align bytes
  }

  SECTION("the block header") {
    const std::size_t b = 0x200;
    CHECK(text(c, b, 4) == "KTMB");
    CHECK(le(c, b + 0, 4) == 0x424d544b);
    CHECK(le(c, b + 4, 2) == 1);     // v1
    CHECK(le(c, b + 6, 2) == 3);     // 3 records
    CHECK(le(c, b + 8, 8) == 1);     // seq 1
    CHECK(le(c, b + 16, 8) == 0);    // durable seq 0
    CHECK(le(c, b + 24, 8) == log_id);
    CHECK(le(c, b + 32, 4) == 0);    // container 0
    CHECK(le(c, b + 36, 4) == 1);    // offset 1
    CHECK(le(c, b + 40, 4) == 1);    // 1 sector
    CHECK(le(c, b + 44, 4) == 175);  // 175 bytes used: 64 + (32 + 5) + (32 + 4) + (32 + 6)
    CHECK(le(c, b + 48, 4) == 1);    // epoch 1
    CHECK(all_zero(c, b + 52, b + 60));
    CHECK(le(c, b + 60, 4) == crc_with_field_zero(c, b, b + 64, b + 60));  // header CRC
  }

  SECTION("the three records") {
    struct expected_record {
      std::size_t at;  // the header's offset in ex.c0
      std::uint32_t length, stream;
      std::uint16_t number;
      std::uint64_t previous;
      std::uint32_t crc;  // as the example shows it
      std::string payload;
    };
    const expected_record records[3] = {
        {0x240, 5, 1, 0, 0, 0xd633b5b6u, "begin"},
        {0x265, 4, 2, 1, 0, 0xcc605f16u, "undo"},
        {0x289, 6, 1, 2, 0x200, 0x5ec6b3fcu, "commit"},
    };
    for (const auto& r : records) {
      INFO("record " << r.number << " at 0x" << std::hex << r.at);
      CHECK(le(c, r.at + 0, 4) == r.length);
      CHECK(le(c, r.at + 4, 4) == r.stream);
      CHECK(le(c, r.at + 8, 1) == 1);  // type 1 (data)
      CHECK(le(c, r.at + 9, 1) == 0);  // flags
      CHECK(le(c, r.at + 10, 2) == r.number);
      CHECK(le(c, r.at + 12, 8) == r.previous);
      CHECK(le(c, r.at + 20, 8) == 0);  // undo-next 0
      // CRC of the header (this field zero) then the payload: no log id in
      // it, so the example's value exactly
      CHECK(le(c, r.at + 28, 4) == r.crc);
      CHECK(le(c, r.at + 28, 4) == crc_with_field_zero(c, r.at, r.at + 32 + r.length, r.at + 28));
      CHECK(text(c, r.at + 32, r.length) == r.payload);
    }
    // packed back to back, up to the 175 bytes used
    CHECK(records[1].at == records[0].at + 32 + 5);
    CHECK(records[2].at == records[1].at + 32 + 4);
    CHECK(records[2].at + 32 + 6 == 0x200 + 175);
  }

  SECTION("the padding and the sector trailer") {
    CHECK(all_zero(c, 0x200 + 175, 0x3f8));  // zero-padding to the end of the sector body
    // stamp = high 32 bits of (seq * 0x9e3779b97f4a7c15 xor epoch * 0xc2b2ae3d27d4eb4f), seq 1, epoch 1
    const std::uint64_t mix = (std::uint64_t{1} * 0x9e3779b97f4a7c15ull) ^ (std::uint64_t{1} * 0xc2b2ae3d27d4eb4full);
    CHECK(le(c, 0x3f8, 4) == (mix >> 32));
    CHECK(le(c, 0x3f8, 4) == 0x5c85d784u);  // the example's value
    CHECK(le(c, 0x3fc, 2) == 0);  // sector index 0
    CHECK(le(c, 0x3fe, 2) == 3);  // first | last
    CHECK(all_zero(c, 0x400, container_size));  // nothing after the block
  }

  SECTION("every byte of ex.c0 is the example's but the log id and the two CRCs over it") {
    const std::vector<std::uint8_t>& d = doc.bytes;
    CHECK(le(d, 16, 8) == le(d, 0x218, 8));  // the example names one log id
    // the example with this log's id and the CRCs over it (checked above)
    std::vector<std::uint8_t> expected = d;
    for (const auto& [off, n] : {std::pair<std::size_t, std::size_t>{12, 4}, {16, 8}, {0x218, 8}, {0x23c, 4}})
      for (std::size_t i = off; i < off + n; ++i) expected[i] = c[i];
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < container_size; ++i) {
      if (c[i] == expected[i]) continue;
      ++mismatches;
      FAIL_CHECK("ex.c0 byte 0x" << std::hex << i << ": written 0x" << int{c[i]} << ", the example shows 0x"
                                 << int{expected[i]} << (doc.shown[i] ? "" : " (a line left out: zero)"));
    }
    CHECK(mismatches == 0);
  }
}

// The example's own header CRCs, against the bytes it shows (as a real
// log's would be): the container header's and the block header's.
TEST_CASE("the header CRCs of the worked example are those of the bytes it shows") {
  const dump_image doc = parse_dump(doc_dump);
  const std::vector<std::uint8_t>& d = doc.bytes;
  CHECK(le(d, 0x23c, 4) == crc_with_field_zero(d, 0x200, 0x240, 0x23c));
  CHECK(le(d, 12, 4) == crc_with_field_zero(d, 0, 64, 12));
}
