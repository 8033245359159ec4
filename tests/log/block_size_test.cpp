// The automatic block size: 1 MiB, halved to fit the container.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ktm/log/format.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {

// The largest payload a block of `block` bytes holds.
std::size_t max_payload(std::uint32_t block) {
  return block / 512 * format::sector_body - format::bh::size - format::rh::size;
}

}  // namespace

TEST_CASE("the automatic block size is 1 MiB where eight fit in a container; else 256 KiB halved until two fit") {
  log_options o;
  CHECK(o.block_size == 0u);
  CHECK(o.effective_block_size() == 1u << 20);  // 16 MiB containers
  o.container_size = (8u << 20) + 512;
  CHECK(o.effective_block_size() == 1u << 20);
  o.container_size = 8u << 20;  // seven whole blocks of 1 MiB after the header
  CHECK(o.effective_block_size() == 256u * 1024);
  o.container_size = 1u << 20;
  CHECK(o.effective_block_size() == 256u * 1024);
  o.container_size = 64u * 1024;
  CHECK(o.effective_block_size() == 16u * 1024);
  o.io_align = 65536;
  o.container_size = 16u << 20;  // 15 MiB + 960 KiB after a 64 KiB header
  CHECK(o.effective_block_size() == 1u << 20);
  o.container_size = 8u << 20;  // 8 MiB less a 64 KiB header: not eight of 1 MiB
  CHECK(o.effective_block_size() == 256u * 1024);
  o.container_size = 3u * 65536;  // room for two blocks of io_align only
  CHECK(o.effective_block_size() == 65536u);
  o.block_size = 64u * 1024;  // given: kept as it is
  CHECK(o.effective_block_size() == 64u * 1024);
}

TEST_CASE("a container with no room for two blocks of 1 KiB is refused at create; as before") {
  log_options o;
  o.container_size = 2048;
  memory_storage st;
  auto lg = mlog::create(st, "l", o);
  REQUIRE_FALSE(lg);
  CHECK(lg.error().code == errc::invalid_argument);
}

TEST_CASE("a log with the automatic block size takes a record as large as its blocks hold; and no larger") {
  for (const std::uint32_t container : {1u << 20, 16u << 20}) {
    log_options o;
    o.container_size = container;
    const std::uint32_t block = o.effective_block_size();
    INFO("containers of " << container << " bytes, blocks of " << block);
    memory_storage st;
    auto lg = mlog::create(st, "l", o);
    REQUIRE(lg);
    auto s = lg->create_stream("s");
    REQUIRE(s);
    auto ma = s->marshalling_area();
    REQUIRE(ma);
    const std::string big(max_payload(block), 'x');
    auto l = ma->append(as_bytes(big), record_type::data, append_flags::force);
    REQUIRE(l);
    CHECK(ma->append(as_bytes(big + "y")).error().code == errc::record_too_large);
    auto v = s->read_forward();
    std::size_t n = 0;
    for (const auto& r : v) {
      CHECK(r.payload.size() == big.size());
      ++n;
    }
    CHECK(n == 1u);
  }
}
