// The write path over posix files: write-behind of full blocks (a writer
// thread) mixed with forced appends from several threads; nothing is lost
// or reordered, and reads see blocks the writer has not written yet.
#include <catch2/catch.hpp>

#include <atomic>
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

TEST_CASE("write-behind and forced appends from many threads keep every record in order") {
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  constexpr int threads = 4, per = 150;
  {
    auto o = ktm::test::medium_log_options();
    o.container_size = 4 << 20;
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
