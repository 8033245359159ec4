// The log over real files (ktm/io/posix_file.hpp): write, reopen, read.
#include <catch2/catch.hpp>

#include "ktm/io/posix_file.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using ktm::test::as_bytes;

TEST_CASE("a log over posix files keeps forced records across a reopen") {
  ktm::test::temp_dir dir;
  ktm::io::posix_storage st(dir.path().string());
  {
    auto lg = ktm::log::log<ktm::io::posix_storage>::create(st, "p", ktm::test::medium_log_options());
    REQUIRE(lg);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    for (int i = 0; i < 50; ++i)
      REQUIRE(ma->append(as_bytes("rec" + std::to_string(i)), record_type::data, append_flags::force));
  }
  auto lg = ktm::log::log<ktm::io::posix_storage>::open(st, "p");
  REQUIRE(lg);
  auto got = ktm::test::read_all(*lg->open_stream("a"));
  REQUIRE(got.size() == 50);
  CHECK(got[49] == "rec49");
}
