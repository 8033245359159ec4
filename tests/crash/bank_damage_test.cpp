// tests/crash/bank_damage_test.cpp: the bank on a damaged or foreign
// directory. Every subcommand exits non-zero with one line naming the file
// and the offset (or LSN) of the damage; none crashes.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "tests/crash/bank_checks.hpp"
#include "tests/crash/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::crash;

namespace {

const std::vector<std::string> commands{"run", "verify", "ledger", "balances"};

// The command failed cleanly: a normal exit, not 0, one line on stderr that
// contains every word of `must_name`.
void require_clean_failure(const process_result& r, const std::vector<std::string>& must_name) {
  INFO("stderr: " << r.err);
  REQUIRE(r.exited());
  REQUIRE(r.exit_code() != 0);
  REQUIRE(!r.err.empty());
  REQUIRE(r.err.find('\n') == r.err.size() - 1);
  REQUIRE(r.err.rfind("bank: ", 0) == 0);
  for (const auto& w : must_name) REQUIRE(r.err.find(w) != std::string::npos);
}

void flip(const std::string& path, std::size_t offset, std::size_t n) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  std::vector<char> b(n);
  f.seekg(static_cast<std::streamoff>(offset));
  f.read(b.data(), static_cast<std::streamsize>(n));
  for (char& c : b) c = static_cast<char>(~c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(b.data(), static_cast<std::streamsize>(n));
}

void make_bank(const std::string& dir) {
  REQUIRE(run_bank({"init", dir, "--accounts", "20", "--balance", "100", "--shards", "3"}).exit_code() == 0);
  auto r = run_bank({"run", dir, "--threads", "2", "--transfers", "300", "--seed", "3"});
  INFO("run stderr: " << r.err);
  REQUIRE(r.exit_code() == 0);
}

}  // namespace

TEST_CASE("every subcommand on a directory that holds no bank fails with one line naming bank.meta") {
  ktm::test::temp_dir tmp;
  for (const auto& c : commands) require_clean_failure(run_bank({c, tmp.path().string()}), {"bank.meta", "offset"});
  require_clean_failure(run_bank({"verify", tmp.file("no-such-dir")}), {"bank.meta"});
}

TEST_CASE("a damaged metadata file is reported with its path and offset by every subcommand") {
  ktm::test::temp_dir tmp;
  const std::string dir = tmp.path().string();
  make_bank(dir);
  flip(dir + "/bank.meta", 20, 1);
  for (const auto& c : commands) require_clean_failure(run_bank({c, dir}), {"bank.meta", "offset"});
}

TEST_CASE("a base file damaged in every copy makes every subcommand fail with one line naming bank.blf and the offset") {
  ktm::test::temp_dir tmp;
  const std::string dir = tmp.path().string();
  make_bank(dir);
  // every copy: the base file keeps shadow copies, and one bad copy alone is tolerated
  flip(dir + "/bank.blf", 0, 131072);
  for (const auto& c : commands) require_clean_failure(run_bank({c, dir}), {"bank.blf", "offset"});
}

TEST_CASE("damaged log blocks are reported with the container and position; never applied and never a crash") {
  int failures = 0;
  for (std::size_t offset : {512u, 4096u, 20000u, 40000u, 70000u, 100000u, 150000u}) {
    INFO("damage at offset " << offset << " of bank.c0");
    ktm::test::temp_dir tmp;
    const std::string dir = tmp.path().string();
    make_bank(dir);
    flip(dir + "/bank.c0", offset, 48);
    for (const auto& c : {"verify", "ledger"}) {
      auto r = run_bank({c, dir});
      INFO(c << " stderr: " << r.err);
      REQUIRE(r.exited());
      if (r.exit_code() == 0) continue;  // the damage hit a region no stream needs any more
      ++failures;
      require_clean_failure(r, {"bank.c0"});
      REQUIRE((r.err.find("offset") != std::string::npos || r.err.find("LSN") != std::string::npos));
    }
  }
  CHECK(failures > 0);
}

TEST_CASE("init refuses a directory that holds a bank already") {
  ktm::test::temp_dir tmp;
  const std::string dir = tmp.path().string();
  make_bank(dir);
  require_clean_failure(run_bank({"init", dir, "--accounts", "5", "--balance", "1"}), {"bank.meta"});
  REQUIRE(run_bank({"verify", dir}).exit_code() == 0);
}

TEST_CASE("init creates the bank's directory and its missing parents") {
  ktm::test::temp_dir tmp;
  const std::string dir = (tmp.path() / "a" / "b").string();
  REQUIRE(run_bank({"init", dir, "--accounts", "4", "--balance", "10", "--shards", "2"}).exit_code() == 0);
  auto v = run_bank({"verify", dir});
  REQUIRE(v.exit_code() == 0);
  CHECK(v.out.find("accounts=4 total=40") != std::string::npos);
}

TEST_CASE("init on a path that is a file fails with one line naming it") {
  ktm::test::temp_dir tmp;
  const std::string file = (tmp.path() / "plain").string();
  { std::ofstream(file) << "x"; }
  require_clean_failure(run_bank({"init", file, "--accounts", "4", "--balance", "10"}), {"plain"});
}
