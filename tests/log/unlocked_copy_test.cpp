// Large records (append_path.hpp: unlocked_copy_min and more) are placed in
// the open block under the log's mutex and copied in after it is released;
// a block is sealed only once every such copy into it has returned.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "ktm/io/posix_file.hpp"
#include "tests/log/stress_knobs.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {

constexpr int writers = 4;
constexpr int per_writer = 150;

// Record i of writer t: a size around the threshold or far above it, and
// bytes that name (t, i, offset), so a record copied into the wrong place,
// cut short or sealed half-copied does not read back equal.
std::string record_of(int t, int i) {
  static constexpr std::size_t sizes[] = {100, 4095, 4096, 4097, 9000, 30000, 60000};
  const std::size_t n = sizes[static_cast<std::size_t>(i * 3 + t) % std::size(sizes)];
  std::string s = "w" + std::to_string(t) + "#" + std::to_string(i) + ":";  // counted in n
  for (std::size_t k = s.size(); k < n; ++k) s += static_cast<char>('a' + (t * 7 + i * 13 + static_cast<int>(k)) % 26);
  return s;
}

log_options options() { return ktm::test::stress_log_options(8u << 20); }

// Each writer appends to its own stream, forcing every fifth record; one
// more thread forces the whole log in a loop, so blocks are sealed by
// forcers while other writers are still copying into them. Returns the
// number of failed calls (Catch's macros are not thread-safe).
template <class Storage>
int write_all(ktm::log::log<Storage>& lg) {
  std::vector<marshalling_area<Storage>> areas;
  for (int t = 0; t < writers; ++t) {
    auto s = lg.create_stream("s" + std::to_string(t));
    if (!s) return 1;
    auto m = s->marshalling_area();
    if (!m) return 1;
    areas.push_back(std::move(*m));
  }
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  std::thread forcer([&] {
    while (!done.load()) {
      if (!areas[0].flush_all()) ++failures;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < writers; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_writer; ++i) {
        const auto flags = i % 5 == 4 ? append_flags::force : append_flags::none;
        if (!areas[static_cast<std::size_t>(t)].append(as_bytes(record_of(t, i)), record_type::data, flags))
          ++failures;
      }
    });
  for (auto& th : ts) th.join();
  done = true;
  forcer.join();
  if (!areas[0].flush_all()) ++failures;
  return failures.load();
}

template <class Log>
void check_streams(Log& lg) {
  for (int t = 0; t < writers; ++t) {
    auto s = lg.open_stream("s" + std::to_string(t));
    REQUIRE(s);
    ktm::failure status;
    auto got = ktm::test::read_all(*s, &status);
    CHECK(status.code == errc::end_of_stream);
    REQUIRE(got.size() == per_writer);
    int wrong = 0;
    for (int i = 0; i < per_writer; ++i) wrong += got[static_cast<std::size_t>(i)] != record_of(t, i);
    CHECK(wrong == 0);
  }
}

}  // namespace

TEST_CASE("large and small records from many threads; with forces sealing blocks meanwhile; read back whole and in order (memory)") {
  memory_storage st;
  {
    auto lg = mlog::create(st, "l", options());
    REQUIRE(lg);
    CHECK(write_all(*lg) == 0);
    check_streams(*lg);
  }
  auto lg = mlog::open(st, "l");
  REQUIRE(lg);
  check_streams(*lg);
}

TEST_CASE("large and small records from many threads read back whole after a reopen over files; with the writer thread") {
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  using plog = ktm::log::log<ktm::io::posix_storage>;
  {
    auto lg = plog::create(st, "l", options());
    REQUIRE(lg);
    CHECK(write_all(*lg) == 0);
  }
  auto lg = plog::open(st, "l");
  REQUIRE(lg);
  check_streams(*lg);
}

TEST_CASE("a forced large record is durable when append returns") {
  memory_storage st;
  auto lg = mlog::create(st, "l", options());
  REQUIRE(lg);
  auto s = lg->create_stream("a");
  auto m = s->marshalling_area();
  const std::string big = record_of(0, 5);  // 30000 bytes and its prefix
  auto at = m->append(as_bytes(big), record_type::data, append_flags::force);
  REQUIRE(at);
  CHECK(*at < lg->durable_lsn());
  auto image = ktm::test::crash_image(st);
  auto again = mlog::open(image, "l");
  REQUIRE(again);
  CHECK(ktm::test::read_all(*again->open_stream("a")) == std::vector<std::string>{big});
}
