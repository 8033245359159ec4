// benchmarks/support/table.hpp: the output every benchmark prints.
//
// A table (one row a configuration) followed by one summary line a figure:
//   SUMMARY <figure>: <value> <unit> (target <op> <bound>): met | MISSED
// The summary lines are what the notes and benchmarks/README.md quote.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace ktm::bench {

class table {
 public:
  explicit table(std::vector<std::string> columns) : cols_(std::move(columns)) {}

  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

  void print(const std::string& title) const {
    std::vector<std::size_t> w(cols_.size());
    for (std::size_t i = 0; i < cols_.size(); ++i) w[i] = cols_[i].size();
    for (auto& r : rows_)
      for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
    std::printf("\n%s\n", title.c_str());
    auto line = [&](const std::vector<std::string>& r) {
      std::printf("|");
      for (std::size_t i = 0; i < w.size(); ++i)
        std::printf(" %-*s |", static_cast<int>(w[i]), i < r.size() ? r[i].c_str() : "");
      std::printf("\n");
    };
    line(cols_);
    std::printf("|");
    for (auto n : w) std::printf("%s|", std::string(n + 2, '-').c_str());
    std::printf("\n");
    for (auto& r : rows_) line(r);
    std::fflush(stdout);
  }

 private:
  std::vector<std::string> cols_;
  std::vector<std::vector<std::string>> rows_;
};

inline std::string fmt(double v, int precision = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", precision, v);
  return b;
}

// `at_least`: the target is value >= bound; otherwise value <= bound.
inline void summary(const std::string& figure, double value, const std::string& unit, bool at_least,
                    double bound) {
  bool met = at_least ? value >= bound : value <= bound;
  std::printf("SUMMARY %s: %s %s (target %s %s): %s\n", figure.c_str(), fmt(value, 3).c_str(),
              unit.c_str(), at_least ? ">=" : "<=", fmt(bound, 3).c_str(), met ? "met" : "MISSED");
  std::fflush(stdout);
}

}  // namespace ktm::bench
