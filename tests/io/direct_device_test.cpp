// Tests of ktm/io/direct_device.hpp (O_DIRECT) and ktm/io/aligned_buffer.hpp.
//
// Real direct I/O runs on a file under $TEST_TMPDIR (or /tmp). If that file
// system refuses O_DIRECT, each such test asserts the errc::unsupported path
// instead and says so with a WARN: no check is skipped silently.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ktm/io/aligned_buffer.hpp"
#include "ktm/io/direct_device.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/io/posix_file.hpp"
#include "tests/io/block_device_laws.hpp"
#include "tests/io/io_policy_laws.hpp"
#include "tests/support/temp_dir.hpp"

using ktm::errc;
using ktm::open_mode;
using ktm::io::aligned_buffer;
using ktm::io::direct_device;
using ktm::io::direct_options;
using ktm::io::direct_storage;

namespace {

// Opens `name` for direct I/O; on a file system that refuses O_DIRECT checks
// that the refusal is errc::unsupported, leaves no file behind, and warns.
ktm::result<direct_device> open_or_warn(direct_storage& s, const std::string& name) {
  auto r = s.open(name, open_mode::create_new);
  if (!r) {
    CHECK(r.code() == errc::unsupported);
    CHECK_FALSE(s.exists(name));
    WARN("O_DIRECT refused by the file system of " << s.directory().root()
                                                   << ": checked the unsupported path instead");
  }
  return r;
}

}  // namespace

TEST_CASE("a device with 512 or 4096 byte logical sectors obeys the laws; misalignment included") {
  for (std::size_t b : {512u, 4096u}) {
    INFO("memory device with logical block size " << b);
    ktm::test::check_block_device_laws([b] { return ktm::io::memory_device(b); });
  }
}

TEST_CASE("a direct device on a file obeys the block device laws at the detected and at 4096-byte sectors") {
  ktm::test::temp_dir dir;
  for (std::size_t forced : {std::size_t{0}, std::size_t{4096}}) {
    INFO("forced logical block size " << forced);
    direct_storage s(dir.path().string(), direct_options{false, forced});
    int n = 0;
    auto probe = open_or_warn(s, "probe" + std::to_string(forced));
    if (!probe) continue;
    if (forced) CHECK(probe->logical_block_size() == forced);
    ktm::test::check_block_device_laws([&] {
      auto r = s.open("dev" + std::to_string(forced) + "-" + std::to_string(n++),
                      open_mode::create_new);
      REQUIRE(r);
      return std::move(*r);
    });
  }
}

TEST_CASE("a direct storage obeys the io policy laws") {
  ktm::test::temp_dir dir;
  direct_storage s(dir.path().string());
  if (!open_or_warn(s, "probe")) return;
  ktm::test::check_io_policy_laws(s);
}

TEST_CASE("a misaligned buffer; offset or length is each rejected with misaligned; never EINVAL") {
  ktm::test::temp_dir dir;
  for (std::size_t forced : {std::size_t{0}, std::size_t{4096}}) {
    direct_storage s(dir.path().string(), direct_options{false, forced});
    auto d = open_or_warn(s, "m" + std::to_string(forced));
    if (!d) continue;
    const std::size_t B = d->logical_block_size();
    INFO("logical block size " << B);
    REQUIRE(B >= 512);
    REQUIRE_FALSE(d->grow(4 * B));
    aligned_buffer buf(2 * B, B);
    // buffer address
    CHECK(d->write(0, buf.span().subspan(1, B)) == errc::misaligned);
    CHECK(d->read(0, buf.span().subspan(1, B)) == errc::misaligned);
    CHECK(d->write(0, buf.span().subspan(B / 2, B)) == errc::misaligned);
    // offset
    CHECK(d->write(1, buf.span().first(B)) == errc::misaligned);
    CHECK(d->read(B / 2, buf.span().first(B)) == errc::misaligned);
    // length
    CHECK(d->write(0, buf.span().first(B - 1)) == errc::misaligned);
    CHECK(d->read(0, buf.span().first(B + 1)) == errc::misaligned);
    // grow to a size that is not a multiple of the block
    CHECK(d->grow(5 * B + 1) == errc::misaligned);
    CHECK(d->size() == 4 * B);
    // aligned calls still work afterwards
    ktm::test::fill_pattern(buf.span(), 9);
    CHECK_FALSE(d->write(B, buf.span()));
    aligned_buffer r(2 * B, B);
    CHECK_FALSE(d->read(B, r.span()));
    CHECK(std::equal(buf.span().begin(), buf.span().end(), r.span().begin()));
  }
}

TEST_CASE("the logical block size of a file is a power of two the kernel accepts") {
  ktm::test::temp_dir dir;
  direct_storage s(dir.path().string());
  auto d = open_or_warn(s, "lbs");
  if (!d) return;
  auto b = direct_device::detect_logical_block_size(d->file().fd());
  REQUIRE(b);
  CHECK(*b == d->logical_block_size());
  CHECK(*b >= 512);
  CHECK((*b & (*b - 1)) == 0);
  // A one-block write at the detected size goes through the kernel.
  REQUIRE_FALSE(d->grow(*b));
  aligned_buffer w(*b, *b);
  CHECK_FALSE(d->write(0, w.span()));
}

TEST_CASE("a forced logical block size must be a power-of-two multiple of the detected one") {
  ktm::test::temp_dir dir;
  {
    direct_storage s(dir.path().string(), direct_options{false, 1000});
    auto r = s.open("bad", open_mode::create_new);
    if (r.code() == errc::unsupported) WARN("O_DIRECT refused: the unsupported path was checked instead");
    else CHECK(r.code() == errc::invalid_argument);
  }
  {
    direct_storage s(dir.path().string(), direct_options{false, 256});
    auto r = s.open("small", open_mode::create_new);
    if (r.code() == errc::unsupported) WARN("O_DIRECT refused: the unsupported path was checked instead");
    else CHECK(r.code() == errc::invalid_argument);  // every file system needs >= 512
  }
}

TEST_CASE("a file system that refuses O_DIRECT yields unsupported") {
  // procfs refuses O_DIRECT at open with EINVAL, as tmpfs did before Linux 6.6.
  if (!std::filesystem::exists("/proc/self/comm")) {
    WARN("no /proc on this system: the refusal was not exercised");
    CHECK(true);
    return;
  }
  auto r = direct_device::open("/proc/self/comm", open_mode::open_existing);
  CHECK(r.code() == errc::unsupported);
  CHECK(r.error().file == "/proc/self/comm");
}

TEST_CASE("a direct device opened by path reports a missing file as not_found") {
  ktm::test::temp_dir dir;
  auto r = direct_device::open(dir.file("absent"), open_mode::open_existing);
  CHECK(r.code() == errc::not_found);
  auto c = direct_device::open(dir.file("made"), open_mode::create_new);
  if (!c) {
    CHECK(c.code() == errc::unsupported);
    CHECK_FALSE(std::filesystem::exists(dir.file("made")));
    WARN("O_DIRECT refused: checked that no stray file was left");
    return;
  }
  CHECK(c->size() == 0);
}

TEST_CASE("with dsync every direct write is durable on return and still readable through the page cache") {
  ktm::test::temp_dir dir;
  direct_storage s(dir.path().string(), direct_options{true, 0});
  auto d = open_or_warn(s, "dsync");
  if (!d) return;
  const std::size_t B = d->logical_block_size();
  REQUIRE_FALSE(d->grow(8 * B));
  aligned_buffer w(3 * B, B);
  ktm::test::fill_pattern(w.span(), 11);
  REQUIRE_FALSE(d->write(2 * B, w.span()));
  CHECK_FALSE(d->flush());
  CHECK((::fcntl(d->file().fd(), F_GETFL) & O_DSYNC) == O_DSYNC);
  // A buffered reader of the same file sees the bytes.
  auto f = ktm::io::posix_file::open(dir.file("dsync"));
  REQUIRE(f);
  std::vector<std::byte> r(3 * B);
  REQUIRE_FALSE(f->read(2 * B, r));
  CHECK(std::equal(r.begin(), r.end(), w.span().begin()));
}

TEST_CASE("a raw block device reports its logical sector size and cannot grow") {
  // Opt-in, because it writes to the device: KTM_TEST_BLOCK_DEVICE=/dev/loopN
  // (a scratch device), optionally KTM_TEST_BLOCK_DEVICE_SECTOR=512|4096.
  const char* path = std::getenv("KTM_TEST_BLOCK_DEVICE");
  if (!path || !*path) {
    WARN("KTM_TEST_BLOCK_DEVICE not set: BLKSSZGET detection on a raw device not exercised");
    CHECK(true);
    return;
  }
  auto d = direct_device::open(path, open_mode::open_existing);
  REQUIRE(d);
  CHECK(d->file().is_block_device());
  const std::size_t B = d->logical_block_size();
  CHECK((B == 512 || B == 4096));
  if (const char* want = std::getenv("KTM_TEST_BLOCK_DEVICE_SECTOR"))
    CHECK(B == std::stoul(want));
  const auto size = d->size();
  REQUIRE(size >= 4 * B);
  CHECK(d->grow(size) == std::error_code{});
  CHECK(d->grow(size + B) == errc::no_space);
  aligned_buffer w(2 * B, B), r(2 * B, B);
  ktm::test::fill_pattern(w.span(), 13);
  const auto at = size - 2 * B;
  REQUIRE_FALSE(d->write(at, w.span()));
  REQUIRE_FALSE(d->flush());
  REQUIRE_FALSE(d->read(at, r.span()));
  CHECK(std::equal(w.span().begin(), w.span().end(), r.span().begin()));
  CHECK(d->write(at + B / 2, w.span().first(B)) == errc::misaligned);
  CHECK(d->write(size - B, w.span()) == errc::out_of_range);
}

TEST_CASE("a failed flush makes a direct device fail-stop") {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  ktm::io::unique_fd keep_read_end(p[0]);
  direct_device d(ktm::io::posix_file(ktm::io::unique_fd(p[1])), 512);
  ktm::test::check_fail_stop_law(d);
}

TEST_CASE("an aligned buffer is zeroed; aligned; deep-copied and emptied by a move") {
  aligned_buffer a(1000, 4096);
  CHECK(a.size() == 1000);
  CHECK(a.alignment() == 4096);
  CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 4096 == 0);
  CHECK(ktm::test::all_equal(a.span(), std::byte{0}));
  a[3] = std::byte{7};
  aligned_buffer b = a;
  CHECK(b.data() != a.data());
  CHECK(b[3] == std::byte{7});
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 4096 == 0);
  aligned_buffer c = std::move(a);
  CHECK(a.empty());
  CHECK(a.data() == nullptr);
  CHECK(c[3] == std::byte{7});
  aligned_buffer small(3, 1);
  CHECK(small.alignment() == alignof(std::max_align_t));
  CHECK(aligned_buffer().empty());
  static_assert(aligned_buffer::round_up(1, 512) == 512);
  static_assert(aligned_buffer::round_up(512, 512) == 512);
  static_assert(aligned_buffer::round_up(0, 4096) == 0);
}
