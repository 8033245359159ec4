// The write path over posix files: write-behind of full blocks (a writer
// thread) mixed with forced appends from several threads; nothing is lost
// or reordered, and reads see blocks the writer has not written yet.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "ktm/io/posix_file.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using ktm::test::as_bytes;
using ktm::test::as_string;
using plog = ktm::log::log<ktm::io::posix_storage>;

namespace {

#if defined(__linux__)
// Threads of this process now. A thread just joined can still be listed for
// a moment (it leaves /proc after pthread_join returns), so the count is
// read until two reads agree.
std::size_t thread_count() {
  const auto once = [] {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                                  std::filesystem::directory_iterator()));
  };
  std::size_t n = once();
  for (std::size_t m; (m = once()) != n; n = m) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return n;
}
#endif

}  // namespace

TEST_CASE("write-behind and forced appends from many threads keep every record in order") {
  const bool write_behind = GENERATE(true, false);
  INFO("log_options::write_behind = " << write_behind);
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  constexpr int threads = 4, per = 150;
  {
    auto o = ktm::test::medium_log_options();
    o.container_size = 4 << 20;
    o.write_behind = write_behind;
    auto lg = plog::create(st, "w", o);
    REQUIRE(lg);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    std::atomic<int> failed{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < per; ++i) {
          std::string p = std::to_string(t) + ":" + std::to_string(i) + ":" + std::string(700 + 37 * t, 'x');
          auto f = i % 10 == 9 ? append_flags::force : append_flags::none;
          if (!ma->append(as_bytes(p), record_type::data, f)) ++failed;
        }
      });
    // a reader racing the writer: every record it returns is whole
    std::size_t seen = 0;
    for (const auto& r : s->read_forward()) {
      CHECK(as_string(r.payload).find(':') != std::string::npos);
      ++seen;
    }
    for (auto& t : ts) t.join();
    CHECK(failed == 0);
    REQUIRE(ma->flush_all());
  }
  auto lg = plog::open(st, "w");
  REQUIRE(lg);
  std::vector<int> next(threads, 0);
  std::size_t total = 0;
  for (const auto& r : lg->open_stream("a")->read_forward()) {
    auto p = as_string(r.payload);
    const int t = std::stoi(p.substr(0, p.find(':')));
    const int i = std::stoi(p.substr(p.find(':') + 1));
    CHECK(i == next[static_cast<std::size_t>(t)]++);
    ++total;
  }
  CHECK(total == threads * per);
}

#if defined(__linux__)
TEST_CASE("a log opened without write-behind starts no thread and loses nothing") {
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  for (const bool write_behind : {false, true}) {
    INFO("log_options::write_behind = " << write_behind);
    auto o = ktm::test::medium_log_options();
    o.container_size = 4 << 20;
    o.write_behind = write_behind;
    o.read_thread = false;  // only the writer thread may start
    const std::string name = write_behind ? "on" : "off";
    const std::size_t before = thread_count();
    {
      auto lg = plog::create(st, name, o);
      REQUIRE(lg);
      auto s = lg->create_stream("a");
      auto ma = s->marshalling_area();
      // many full blocks, then a tail that flush_all writes
      for (int i = 0; i < 3000; ++i) REQUIRE(ma->append(as_bytes(std::to_string(i) + std::string(500, 'w'))));
      CHECK(thread_count() == before + (write_behind ? 1 : 0));
      REQUIRE(ma->flush_all());
    }
    auto lg = plog::open(st, name, o);  // o: no read-ahead thread left behind
    REQUIRE(lg);
    int next = 0;
    for (const auto& r : lg->open_stream("a")->read_forward()) {
      const auto p = as_string(r.payload);
      CHECK(std::stoi(p.substr(0, p.find('w'))) == next++);
    }
    CHECK(next == 3000);
  }
}
#endif
