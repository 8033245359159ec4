// benchmarks/support/bench_dir.hpp: where benchmarks put their files.
//
// $KTM_BENCH_DIR if set, else /var/tmp/ktm-bench. Every benchmark measures
// its baseline in the same directory in the same run, so both see the same
// file system and device; the directory is emptied on entry and exit.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ktm::bench {

class bench_dir {
 public:
  explicit bench_dir(const std::string& leaf) {
    const char* base = std::getenv("KTM_BENCH_DIR");
    path_ = std::filesystem::path(base && *base ? base : "/var/tmp/ktm-bench") / leaf;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  bench_dir(const bench_dir&) = delete;
  bench_dir& operator=(const bench_dir&) = delete;
  ~bench_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // A fresh, empty subdirectory (for a peer that wants a directory of its own).
  std::string fresh(const std::string& name) const {
    auto p = path_ / name;
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// True when benchmarks should run briefly (CI): $KTM_BENCH_SHORT is set.
inline bool short_mode() {
  const char* s = std::getenv("KTM_BENCH_SHORT");
  return s && *s && *s != '0';
}

}  // namespace ktm::bench
