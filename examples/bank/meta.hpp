// examples/bank/meta.hpp: the bank's small metadata file, DIR/bank.meta.
//
// The log holds the data; this file holds what must not change between runs
// and is needed before the log can be read: the accounts' count and initial
// balance, the number of shards, and the ids of the TM and of every RM (the
// TM logs RM ids with its commit records; a map's id is its identity).
//
//   ktm-bank 1
//   accounts 100
//   balance 1000
//   shards 4
//   tm 6c7f...            one guid per line
//   shard 0 1b4e...
//   ledger 9a1c...
//   check 0123456789abcdef  FNV-1a 64 of every byte before this line
//
// Written once by `bank init` (temporary file, fsync, rename, directory
// fsync), so a crash leaves either no file or the whole file. A damaged file
// is reported with its path and the byte offset of the first bad line.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ktm/guid.hpp"

namespace bank {

// Every failure the bank reports: one line, naming the file and offset when
// there is one. main() prints it and exits non-zero.
struct bank_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct bank_meta {
  std::int64_t accounts = 0;
  std::int64_t balance = 0;
  int shards = 0;
  ktm::guid tm_id;
  std::vector<ktm::guid> shard_ids;
  ktm::guid ledger_id;

  static std::string path(const std::string& dir) { return dir + "/bank.meta"; }
};

inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

inline std::string hex64(std::uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

inline void write_meta(const std::string& dir, const bank_meta& m) {
  std::ostringstream o;
  o << "ktm-bank 1\naccounts " << m.accounts << "\nbalance " << m.balance << "\nshards " << m.shards << "\ntm "
    << m.tm_id.to_string() << "\n";
  for (std::size_t i = 0; i < m.shard_ids.size(); ++i) o << "shard " << i << " " << m.shard_ids[i].to_string() << "\n";
  o << "ledger " << m.ledger_id.to_string() << "\n";
  std::string text = o.str();
  text += "check " + hex64(fnv1a(text)) + "\n";
  const std::string tmp = dir + "/bank.meta.tmp", final_path = bank_meta::path(dir);
  auto fail = [&](const std::string& what, const std::string& p) {
    throw bank_error(what + " " + p + ": " + std::strerror(errno));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", tmp);
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail("cannot write", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("cannot fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) fail("cannot rename to", final_path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail("cannot open directory", dir);
  if (::fsync(dfd) != 0) {
    ::close(dfd);
    fail("cannot fsync directory", dir);
  }
  ::close(dfd);
}

inline bank_meta read_meta(const std::string& dir) {
  const std::string p = bank_meta::path(dir);
  std::ifstream in(p, std::ios::binary);
  if (!in) throw bank_error("not a bank directory: cannot open " + p + " at offset 0: " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t off = 0;
  auto bad = [&](const std::string& why) -> bank_error {
    return bank_error("damaged metadata in " + p + " at offset " + std::to_string(off) + ": " + why);
  };
  auto next_line = [&](std::string& line) {
    const std::size_t nl = text.find('\n', off);
    if (nl == std::string::npos) throw bad("truncated");
    line = text.substr(off, nl - off);
    return nl + 1;
  };
  auto words = [](const std::string& line) {
    std::vector<std::string> w;
    std::istringstream s(line);
    for (std::string x; s >> x;) w.push_back(x);
    return w;
  };
  auto number = [&](const std::string& s) {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) throw bad("not a number: " + s);
    return v;
  };
  auto id = [&](const std::string& s) {
    auto g = ktm::guid::from_string(s);
    if (!g || g->is_nil()) throw bad("not a guid: " + s);
    return *g;
  };
  bank_meta m;
  std::string line;
  std::size_t after = next_line(line);
  if (line != "ktm-bank 1") throw bad("not a ktm bank metadata file");
  off = after;
  int shard_lines = 0;
  bool have_ledger = false, have_tm = false;
  for (;;) {
    after = next_line(line);
    auto w = words(line);
    if (w.size() == 2 && w[0] == "check") {
      if (w[1] != hex64(fnv1a(std::string_view(text).substr(0, off)))) throw bad("checksum mismatch");
      break;
    }
    if (w.size() == 2 && w[0] == "accounts") m.accounts = number(w[1]);
    else if (w.size() == 2 && w[0] == "balance") m.balance = number(w[1]);
    else if (w.size() == 2 && w[0] == "shards") m.shards = static_cast<int>(number(w[1]));
    else if (w.size() == 2 && w[0] == "tm") m.tm_id = id(w[1]), have_tm = true;
    else if (w.size() == 2 && w[0] == "ledger") m.ledger_id = id(w[1]), have_ledger = true;
    else if (w.size() == 3 && w[0] == "shard" && number(w[1]) == shard_lines) m.shard_ids.push_back(id(w[2])), ++shard_lines;
    else throw bad("unexpected line");
    off = after;
  }
  off = 0;
  if (!have_tm || !have_ledger || m.accounts <= 0 || m.shards <= 0 || shard_lines != m.shards)
    throw bad("incomplete");
  return m;
}

}  // namespace bank
