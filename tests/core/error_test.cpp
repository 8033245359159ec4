#include <catch2/catch.hpp>

#include <cerrno>
#include <string>

#include "ktm/error.hpp"
#include "ktm/result.hpp"

TEST_CASE("ktm error codes belong to the ktm category and keep their ids") {
  std::error_code ec = ktm::errc::log_full;
  CHECK(std::string(ec.category().name()) == "ktm");
  CHECK(ec.value() == 28);
  CHECK(ec == ktm::errc::log_full);
  CHECK(ec.message() == "log is full");
}

TEST_CASE("every errno a device can see maps onto a ktm code") {
  CHECK(ktm::from_errno(0) == std::error_code{});
  CHECK(ktm::from_errno(ENOSPC) == ktm::errc::no_space);
  CHECK(ktm::from_errno(EDQUOT) == ktm::errc::no_space);
  CHECK(ktm::from_errno(EIO) == ktm::errc::io_error);
  CHECK(ktm::from_errno(ENOENT) == ktm::errc::not_found);
  CHECK(ktm::from_errno(EROFS) == ktm::errc::permission_denied);
}

TEST_CASE("an unknown code still has a message") {
  CHECK(ktm::error_category().message(9999) == "unknown ktm error 9999");
}

namespace {
ktm::result<int> half(int x) {
  if (x % 2) return ktm::failure(ktm::errc::invalid_argument, ktm::position::at_offset(7), "f");
  return x / 2;
}
ktm::result<int> quarter(int x) {
  auto h = half(x);
  KTM_TRY(h);
  return half(*h);
}
ktm::result<void> checked(std::error_code ec) {
  KTM_TRY_EC(ec, ktm::position::at_lsn(0x1234));
  return {};
}
}  // namespace

TEST_CASE("a failure names its file and offset or LSN") {
  auto r = half(3);
  REQUIRE_FALSE(r);
  CHECK(r.code() == ktm::errc::invalid_argument);
  CHECK(r.error().message() == "invalid argument (ktm:39) in f at offset 7");
  auto l = checked(ktm::errc::corrupt_record);
  REQUIRE_FALSE(l);
  CHECK(l.error().message() == "log record is corrupt (ktm:22) at LSN 0x0000000000001234");
}

TEST_CASE("KTM_TRY passes values through and failures out") {
  CHECK(*quarter(8) == 2);
  CHECK(quarter(6).code() == ktm::errc::invalid_argument);
  CHECK(checked({}).has_value());
  ktm::result<void> ok = std::error_code{};
  CHECK(ok.has_value());
}

TEST_CASE("a result holds its value or its failure; and reading the other one throws") {
  ktm::result<std::string> ok(std::string("v"));
  REQUIRE(ok);
  CHECK(ok.value() == "v");
  CHECK(*ok == "v");
  CHECK(ok->size() == 1);
  CHECK_FALSE(ok.code());
  CHECK_THROWS_AS(ok.error(), ktm::bad_result_access);

  ktm::result<std::string> bad(ktm::failure(ktm::errc::corrupt_record, ktm::position::at_offset(7), "f"));
  REQUIRE_FALSE(bad);
  CHECK(bad.code() == ktm::errc::corrupt_record);
  CHECK(bad.error().where.value == 7);
  CHECK_THROWS_AS(bad.value(), ktm::bad_result_access);
  CHECK_THROWS_AS(*bad, ktm::bad_result_access);

  // copies and moves keep whichever is held
  auto copy = bad;
  CHECK(copy.code() == ktm::errc::corrupt_record);
  ktm::result<std::string> moved(std::move(ok));
  CHECK(moved.value() == "v");
  copy = moved;
  CHECK(copy.value() == "v");

  ktm::result<void> fine;
  CHECK(fine);
  CHECK_FALSE(fine.error().code);  // a success reads as an empty failure
  ktm::result<void> failed(std::make_error_code(std::errc::io_error));
  CHECK_FALSE(failed);
}
