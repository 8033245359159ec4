// log_options::preformat_containers: new containers are written out in full
// (zeros) and flushed before the log writes records into them.
#include <catch2/catch.hpp>

#if defined(__linux__)
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using ktm::log::detail::container_file_name;
using flog = ktm::log::log<fstore>;

namespace {

// Every write to each file before that file's first flush: what a new
// container holds when the log starts to use it.
struct first_writes {
  std::mutex mu;
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> writes;  // [begin, end)
  std::map<std::string, bool> flushed;

  void watch(fault_controller& c) {
    c.fail_when(
        [this](const ktm::io::call_info& i) {
          std::lock_guard g(mu);
          const std::string dev(i.device);
          if (i.kind == call_kind::flush) flushed[dev] = true;
          if (i.kind == call_kind::write && !flushed[dev]) writes[dev].push_back({i.offset, i.offset + i.length});
          return false;  // never fails a call, only looks
        },
        errc::io_error, ktm::io::persistence::every_match, ktm::io::kind_set::all());
  }

  // The bytes of [0, size) that `file` had written before its first flush.
  std::uint64_t covered(const std::string& file, std::uint64_t size) {
    std::lock_guard g(mu);
    auto w = writes[file];
    std::sort(w.begin(), w.end());
    std::uint64_t done = 0, reach = 0;
    for (auto [b, e] : w) {
      b = std::max(b, reach);
      e = std::min(e, size);
      if (e > b) {
        done += e - b;
        reach = e;
      }
    }
    return done;
  }
};

log_options preformatted(log_options o) {
  o.preformat_containers = true;
  return o;
}

}  // namespace

TEST_CASE("a preformatted log writes every byte of its containers before their first flush") {
  auto o = preformatted(ktm::test::small_log_options());
  o.container_size = 3u << 20;  // three chunks of zeros and a short one
  o.block_size = 8192;
  o.containers = 3;
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  first_writes seen;
  seen.watch(*st.controller());
  auto lg = flog::create(st, "p", o);
  REQUIRE(lg);
  for (std::uint32_t i = 0; i < 3; ++i) CHECK(seen.covered(container_file_name("p", i), o.container_size) == o.container_size);
}

TEST_CASE("without preformatting a new container gets only its header written before its first flush") {
  auto o = ktm::test::small_log_options();
  o.container_size = 3u << 20;
  o.block_size = 8192;
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  first_writes seen;
  seen.watch(*st.controller());
  REQUIRE(flog::create(st, "p", o));
  CHECK(seen.covered(container_file_name("p", 1), o.container_size) == o.io_align);
}

TEST_CASE("a container the log adds when it grows is preformatted too; and the log reads back across it") {
  auto o = preformatted(ktm::test::growing_log_options());
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  first_writes seen;
  seen.watch(*st.controller());
  std::vector<std::string> appended;
  {
    auto lg = flog::create(st, "p", o);
    REQUIRE(lg);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    for (int i = 0; lg->containers().size() < 4; ++i) {
      REQUIRE(i < 10000);
      appended.push_back("record " + std::to_string(i) + std::string(200, 'x'));
      REQUIRE(ma->append(as_bytes(appended.back()), record_type::data, append_flags::force));
    }
  }
  for (std::uint32_t i = 2; i < 4; ++i) CHECK(seen.covered(container_file_name("p", i), o.container_size) == o.container_size);
  auto lg = flog::open(st, "p");
  REQUIRE(lg);
  CHECK(ktm::test::read_all(*lg->open_stream("a")) == appended);
}

TEST_CASE("a write that fails while a container is preformatted fails the create; names the offset; and a retry succeeds") {
  auto o = preformatted(ktm::test::small_log_options());
  o.container_size = 3u << 20;
  o.block_size = 8192;
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  // Container 0's writes are its three chunks of zeros; the second one fails.
  st.controller()->fail_when(
      [](const ktm::io::call_info& i) { return i.device == container_file_name("p", 0) && i.offset > (1u << 20); },
      errc::io_error, ktm::io::persistence::once, ktm::io::kind_set(call_kind::write));
  auto lg = flog::create(st, "p", o);
  REQUIRE_FALSE(lg);
  CHECK(lg.error().code == errc::io_error);
  CHECK(lg.error().file == container_file_name("p", 0));
  CHECK(lg.error().where.what == ktm::position::kind::offset);
  CHECK(lg.error().where.value == (1u << 20) + o.io_align);
  auto again = flog::create(st, "p", o);
  REQUIRE(again);
  auto s = again->create_stream("a");
  REQUIRE(s);
  REQUIRE(s->marshalling_area()->append(as_bytes("after the retry"), record_type::data, append_flags::force));
  auto reopened = flog::open(st, "p");
  REQUIRE(reopened);
  CHECK(ktm::test::read_all(*reopened->open_stream("a")) == std::vector<std::string>{"after the retry"});
}

#if defined(__linux__)
namespace {
// Whether any extent of the file is still "unwritten" (reserved, reads as
// zeros, converted at its first write); nullopt if the file system cannot say.
std::optional<bool> has_unwritten_extent(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return std::nullopt;
  constexpr std::uint32_t max_extents = 64;
  alignas(::fiemap) unsigned char buf[sizeof(::fiemap) + max_extents * sizeof(::fiemap_extent)] = {};
  auto* map = reinterpret_cast<::fiemap*>(buf);
  map->fm_length = FIEMAP_MAX_OFFSET;
  map->fm_flags = FIEMAP_FLAG_SYNC;
  map->fm_extent_count = max_extents;
  const int r = ::ioctl(fd, FS_IOC_FIEMAP, map);
  ::close(fd);
  if (r != 0 || map->fm_mapped_extents == 0) return std::nullopt;
  bool unwritten = false;
  for (std::uint32_t i = 0; i < map->fm_mapped_extents && i < max_extents; ++i)
    unwritten |= (map->fm_extents[i].fe_flags & FIEMAP_EXTENT_UNWRITTEN) != 0;
  return unwritten;
}
}  // namespace

TEST_CASE("on a file system; a preformatted container has no unwritten extents left") {
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  auto o = preformatted(ktm::test::medium_log_options());
  o.container_size = 1u << 20;
  auto lg = ktm::log::log<ktm::io::posix_storage>::create(st, "p", o);
  REQUIRE(lg);
  auto plain = ktm::test::medium_log_options();
  plain.container_size = 1u << 20;
  REQUIRE(ktm::log::log<ktm::io::posix_storage>::create(st, "q", plain));
  const auto reserved = has_unwritten_extent(dir.file(container_file_name("q", 1)));
  if (!reserved || !*reserved) {
    WARN("this file system does not report unwritten extents (fiemap); nothing to compare");
    return;
  }
  for (std::uint32_t i = 0; i < 2; ++i) CHECK(has_unwritten_extent(dir.file(container_file_name("p", i))) == false);
}
#endif
