// Many threads appending and forcing; group commit; fail-stop.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {
// memory storage whose flush takes a while, as a disk's does
class slow_device {
 public:
  explicit slow_device(ktm::io::memory_device d) : d_(std::move(d)) {}
  std::uint64_t size() const { return d_.size(); }
  std::size_t logical_block_size() const { return d_.logical_block_size(); }
  std::error_code read(std::uint64_t o, std::span<std::byte> b) { return d_.read(o, b); }
  std::error_code write(std::uint64_t o, std::span<const std::byte> b) { return d_.write(o, b); }
  std::error_code flush() {
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    return d_.flush();
  }
  std::error_code grow(std::uint64_t n) { return d_.grow(n); }

 private:
  ktm::io::memory_device d_;
};
struct slow_storage {
  using device_type = slow_device;
  memory_storage inner;
  ktm::result<slow_device> open(std::string_view n, ktm::open_mode m) {
    auto d = inner.open(n, m);
    if (!d) return std::move(d).error();
    return slow_device(std::move(*d));
  }
  bool exists(std::string_view n) { return inner.exists(n); }
  std::error_code remove(std::string_view n) { return inner.remove(n); }
  std::error_code rename(std::string_view a, std::string_view b) { return inner.rename(a, b); }
};
}  // namespace

TEST_CASE("many threads appending and forcing on shared streams keep order and lose nothing") {
  slow_storage st;
  auto o = ktm::test::medium_log_options();
  o.container_size = 4 << 20;
  auto lg = ktm::log::log<slow_storage>::create(st, "l", o);
  REQUIRE(lg);
  auto s1 = lg->create_stream("one");
  auto s2 = lg->create_stream("two");
  auto m1 = s1->marshalling_area();
  auto m2 = s2->marshalling_area();
  constexpr int threads = 16, per = 60;
  auto dev = st.inner.open("l.c0", ktm::open_mode::open_existing);
  const auto flushes_before = dev->flush_count();
  std::vector<std::thread> ts;
  std::atomic<int> failed_appends{0}, not_durable{0};  // Catch macros are not thread-safe
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      auto& ma = t % 2 ? *m1 : *m2;
      for (int i = 0; i < per; ++i) {
        auto r = ma.append(as_bytes(std::to_string(t) + ":" + std::to_string(i)), record_type::data,
                           append_flags::force);
        if (!r) ++failed_appends;
        else if (!(*r < lg->durable_lsn())) ++not_durable;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(failed_appends == 0);
  CHECK(not_durable == 0);
  const auto flushes = dev->flush_count() - flushes_before;
  INFO("device flushes: " << flushes);
  CHECK(flushes < threads * per / 4);  // group commit
  auto img = ktm::test::crash_image(st.inner);
  auto lg2 = mlog::open(img, "l");
  REQUIRE(lg2);
  std::size_t total = 0;
  for (const char* name : {"one", "two"}) {
    std::vector<int> next(threads, 0);
    for (const auto& r : lg2->open_stream(name)->read_forward()) {
      auto p = as_string(r.payload);
      const int t = std::stoi(p.substr(0, p.find(':')));
      const int i = std::stoi(p.substr(p.find(':') + 1));
      CHECK(i == next[static_cast<std::size_t>(t)]++);
      ++total;
    }
  }
  CHECK(total == threads * per);
}

TEST_CASE("queue-only appends from many threads are all there after flush_all") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (!ma->append(as_bytes("0123456789abcdef"))) ++failed;
    });
  for (auto& t : ts) t.join();
  CHECK(failed == 0);
  REQUIRE(lg->flush_all());
  CHECK(ktm::test::read_all(*s).size() == 1600);
}

TEST_CASE("after a failed flush nothing is acknowledged and the log is fail-stop") {
  ktm::test::failing_storage st;
  auto lg = ktm::log::log<ktm::test::failing_storage>::create(st, "l", ktm::test::medium_log_options());
  REQUIRE(lg);
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  REQUIRE(ma->append(as_bytes("ok"), record_type::data, append_flags::force));
  st.faults().fail_flushes = true;
  auto r = ma->append(as_bytes("lost"), record_type::data, append_flags::force);
  CHECK(r.code() == errc::log_failed);
  st.faults().fail_flushes = false;
  CHECK(ma->append(as_bytes("later")).code() == errc::log_failed);
  CHECK(ma->flush_all().code() == errc::log_failed);
  CHECK(lg->create_stream("b").code() == errc::log_failed);
  CHECK(s->write_restart_area(as_bytes("r")).code() == errc::log_failed);
  auto v = s->read_forward();
  CHECK(v.begin() == v.end());
  CHECK(v.status().code == errc::log_failed);
}

TEST_CASE("a failed write is fail-stop too") {
  ktm::test::failing_storage st;
  auto lg = ktm::log::log<ktm::test::failing_storage>::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  st.faults().fail_writes = true;
  CHECK(ma->append(as_bytes("x"), record_type::data, append_flags::force).code() == errc::log_failed);
  st.faults().fail_writes = false;
  CHECK(ma->append(as_bytes("y")).code() == errc::log_failed);
  // what was durable before is still readable after reopening
  auto lg2 = mlog::open(st.inner(), "l");
  REQUIRE(lg2);
  CHECK(ktm::test::read_all(*lg2->open_stream("a")).empty());
}
