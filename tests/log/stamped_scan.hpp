// tests/log/stamped_scan.hpp: what one forward read of a stream of stamped
// records (stamped_record.hpp) found.
//
// Fed the records of a read from the stream's first record on, in the order
// the read yields them, it counts each way the read can be wrong: a record
// that is not whole (torn), an LSN not above the one before, a previous
// link that does not name the record before, and a thread's records out of
// its append order (a thread's sequence numbers must read 0, 1, 2, ...).
// `seen[t]` is how many records of thread t the read returned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ktm/log/record.hpp"
#include "tests/log/stamped_record.hpp"

namespace ktm::test {

struct stamped_scan {
  explicit stamped_scan(std::size_t threads) : seen(threads, 0) {}

  std::vector<std::uint32_t> seen;
  std::size_t records = 0;
  std::size_t torn = 0, lsn_not_increasing = 0, broken_links = 0, out_of_order = 0;
  ktm::log::lsn last;  // the last record read (null before the first)

  // The stamp of the record, after checking it against the ones before
  // (nullopt if it is not whole).
  std::optional<stamp> add(const ktm::log::log_record& r) {
    ++records;
    if (!(last < r.at)) ++lsn_not_increasing;
    if (r.previous != last) ++broken_links;
    last = r.at;
    auto s = read_stamp(r.payload);
    if (!s || s->thread >= seen.size() || s->size != stamped_size(s->thread, s->seq)) {
      ++torn;
      return std::nullopt;
    }
    auto& n = seen[s->thread];
    if (s->seq != n) ++out_of_order;
    n = s->seq + 1;
    return s;
  }

  bool clean() const { return torn + lsn_not_increasing + broken_links + out_of_order == 0; }

  std::string describe() const {
    return std::to_string(records) + " records: " + std::to_string(torn) + " torn, " +
           std::to_string(lsn_not_increasing) + " LSNs not increasing, " + std::to_string(broken_links) +
           " broken previous links, " + std::to_string(out_of_order) + " out of their thread's order";
  }
};

}  // namespace ktm::test
