// Tests of ktm/io/posix_file.hpp (posix_file, posix_storage) and
// ktm/io/posix_directory.hpp, on real files under $TEST_TMPDIR or /tmp.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <string>
#include <vector>

#include "ktm/io/aligned_buffer.hpp"
#include "ktm/io/posix_file.hpp"
#include "tests/io/block_device_laws.hpp"
#include "tests/io/io_policy_laws.hpp"
#include "tests/support/temp_dir.hpp"

using ktm::errc;
using ktm::open_mode;
using ktm::io::posix_file;
using ktm::io::posix_storage;
using ktm::io::unique_fd;

namespace {

std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  ktm::test::fill_pattern(v, seed);
  return v;
}

}  // namespace

TEST_CASE("a posix file obeys the block device laws") {
  ktm::test::temp_dir dir;
  posix_storage s(dir.path().string());
  int n = 0;
  ktm::test::check_block_device_laws([&] {
    auto r = s.open("dev" + std::to_string(n++), open_mode::create_new);
    REQUIRE(r);
    return std::move(*r);
  });
}

TEST_CASE("a posix storage obeys the io policy laws") {
  ktm::test::temp_dir dir;
  posix_storage s(dir.path().string());
  ktm::test::check_io_policy_laws(s);
}

TEST_CASE("a posix storage fsyncs the directory after create; rename and remove") {
  ktm::test::temp_dir dir;
  posix_storage s(dir.path().string());
  const auto& d = s.directory();
  auto before = d.sync_count();
  REQUIRE(s.open("a", open_mode::create_new));
  CHECK(d.sync_count() == before + 1);
  REQUIRE(s.open("b", open_mode::open_or_create));
  CHECK(d.sync_count() == before + 2);
  REQUIRE(s.open("b", open_mode::open_or_create));  // exists: no directory change
  REQUIRE(s.open("a", open_mode::open_existing));
  CHECK(d.sync_count() == before + 2);
  REQUIRE_FALSE(s.rename("a", "c"));
  CHECK(d.sync_count() == before + 3);
  REQUIRE_FALSE(s.remove("c"));
  CHECK(d.sync_count() == before + 4);
  CHECK(s.remove("c") == errc::not_found);  // a failed change syncs nothing
  CHECK(d.sync_count() == before + 4);
}

TEST_CASE("a posix storage rejects names that are not one path component") {
  ktm::test::temp_dir dir;
  posix_storage s(dir.path().string());
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
                          std::string("../escape"), std::string("nul\0byte", 8)}) {
    INFO("name '" << bad << "'");
    auto r = s.open(bad, open_mode::open_or_create);
    CHECK(r.code() == errc::invalid_argument);
    CHECK_FALSE(s.exists(bad));
    CHECK(s.remove(bad) == errc::invalid_argument);
    CHECK(s.rename(bad, "ok") == errc::invalid_argument);
    CHECK(s.rename("ok", bad) == errc::invalid_argument);
  }
  CHECK_FALSE(std::filesystem::exists(dir.path().parent_path() / "escape"));
}

TEST_CASE("bytes flushed to a posix file are read back after reopening it") {
  ktm::test::temp_dir dir;
  posix_storage s(dir.path().string());
  const auto w = pattern(10000, 4);
  {
    auto f = s.open("data", open_mode::create_new);
    REQUIRE(f);
    REQUIRE_FALSE(f->grow(12000));
    REQUIRE_FALSE(f->write(1000, w));
    REQUIRE_FALSE(f->flush());
  }
  auto f = s.open("data", open_mode::open_existing);
  REQUIRE(f);
  CHECK(f->size() == 12000);
  std::vector<std::byte> r(10000);
  REQUIRE_FALSE(f->read(1000, r));
  CHECK(r == w);
}

TEST_CASE("posix_file::open takes a path and names the file in its failure") {
  ktm::test::temp_dir dir;
  const auto path = dir.file("by-path");
  auto missing = posix_file::open(path, open_mode::open_existing);
  REQUIRE_FALSE(missing);
  CHECK(missing.code() == errc::not_found);
  CHECK(missing.error().file == path);
  auto f = posix_file::open(path, open_mode::create_new);
  REQUIRE(f);
  CHECK(f->size() == 0);
  CHECK_FALSE(f->is_block_device());
  CHECK(posix_file::open(path, open_mode::create_new).code() == errc::already_exists);
  CHECK(std::filesystem::exists(path));
}

TEST_CASE("grow preallocates zeroed space and never shrinks") {
  ktm::test::temp_dir dir;
  auto f = posix_file::open(dir.file("g"), open_mode::create_new);
  REQUIRE(f);
  REQUIRE_FALSE(f->grow(1 << 20));
  struct ::stat st {};
  REQUIRE(::fstat(f->fd(), &st) == 0);
  CHECK(st.st_size == (1 << 20));
  // fallocate reserved the blocks (ftruncate would have left a hole), unless
  // this file system cannot preallocate.
  if (st.st_blocks * 512 < (1 << 20)) WARN("file system does not preallocate; grow fell back to ftruncate");
  CHECK_FALSE(f->grow(100));
  CHECK(f->size() == (1 << 20));
}

TEST_CASE("a failed fdatasync makes a posix file fail-stop") {
  // fdatasync on a pipe fails (EINVAL): a real failed flush, no mocks.
  int p[2];
  REQUIRE(::pipe(p) == 0);
  unique_fd keep_read_end(p[0]);
  posix_file f{unique_fd(p[1])};
  ktm::test::check_fail_stop_law(f);
  CHECK(f.failed());
  // Fail-stop moves with the file.
  posix_file moved(std::move(f));
  CHECK(moved.flush() == errc::device_failed);
}

TEST_CASE("a posix file owns its descriptor: moves transfer it and destruction closes it") {
  ktm::test::temp_dir dir;
  int fd = -1;
  {
    auto f = posix_file::open(dir.file("m"), open_mode::create_new);
    REQUIRE(f);
    fd = f->fd();
    posix_file g(std::move(*f));
    CHECK(g.fd() == fd);
    CHECK(f->fd() == -1);
    posix_file h;
    h = std::move(g);
    CHECK(h.fd() == fd);
    CHECK(::fcntl(fd, F_GETFD) != -1);
  }
  CHECK(::fcntl(fd, F_GETFD) == -1);
  CHECK(errno == EBADF);
}

TEST_CASE("an operating system error on write or grow is reported; and a short write is not taken for success") {
  // RLIMIT_FSIZE makes the kernel cut a write at the limit (a short transfer)
  // and refuse the rest with EFBIG, which from_errno maps to io_error.
  ktm::test::temp_dir dir;
  auto f = posix_file::open(dir.file("limit"), open_mode::create_new);
  REQUIRE(f);
  REQUIRE_FALSE(f->grow(2 << 20));
  struct ::rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct ::rlimit lim = old;
  lim.rlim_cur = 1 << 20;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);

  const auto w = pattern(8192, 5);
  const auto short_write = f->write((1 << 20) - 4096, w);
  const auto grow = f->grow(4 << 20);

  REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
  std::signal(SIGXFSZ, old_handler);

  CHECK(short_write == errc::io_error);
  CHECK(grow == errc::io_error);
  CHECK(f->size() == (2 << 20));
  std::vector<std::byte> r(4096);
  REQUIRE_FALSE(f->read((1 << 20) - 4096, r));
  CHECK(std::equal(r.begin(), r.end(), w.begin()));  // the first part did land
}

TEST_CASE("threads may read; write and flush one posix file at once") {
  ktm::test::temp_dir dir;
  auto f = posix_file::open(dir.file("shared"), open_mode::create_new);
  REQUIRE(f);
  REQUIRE_FALSE(f->grow(4 * 65536));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const auto w = pattern(65536, static_cast<std::uint32_t>(t));
      std::vector<std::byte> r(65536);
      for (int i = 0; i < 20; ++i) {
        failures[t] += bool(f->write(static_cast<std::uint64_t>(t) * 65536, w));
        failures[t] += bool(f->flush());
        failures[t] += bool(f->read(static_cast<std::uint64_t>(t) * 65536, r));
        failures[t] += r != w;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == std::vector<int>(4, 0));
}
