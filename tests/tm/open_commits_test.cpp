// The replay's set of commit records without an end record: whatever the
// order of commits and ends, and however many stay open for how long, take()
// returns exactly the UOWs whose commit record has not been ended, each
// with that record (a UOW committed twice and never ended: the later one).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/open_commits.hpp"

using ktm::guid;
using ktm::tm::detail::open_commit;
using ktm::tm::detail::open_commits;

namespace {

// What take() must return: the open UOWs, each with its latest (at, seq).
using model = std::map<guid, open_commit<std::uint64_t>>;

model taken(open_commits<std::uint64_t>& oc) {
  model m;
  for (const auto& [uow, c] : oc.take()) {
    if (m.count(uow)) FAIL("take() returned a UOW twice");
    m[uow] = c;
  }
  return m;
}

void check_same(const model& got, const model& want) {
  REQUIRE(got.size() == want.size());
  for (const auto& [uow, c] : want) {
    auto it = got.find(uow);
    REQUIRE(it != got.end());
    CHECK(it->second.at == c.at);
    CHECK(it->second.seq == c.seq);
  }
}

}  // namespace

TEST_CASE("an end record closes its commit whether it is the newest entry or far behind newer ones") {
  open_commits<std::uint64_t> oc;
  std::vector<guid> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back(guid::generate());
  for (std::uint64_t i = 0; i < ids.size(); ++i) oc.add(ids[i], 100 + i, i);
  // newest first, then the oldest (its index slot long since taken by newer ones)
  oc.end(ids.back());
  oc.end(ids.front());
  for (std::size_t i = 1; i + 1 < ids.size(); i += 2) oc.end(ids[i]);
  model want;
  for (std::uint64_t i = 2; i + 1 < ids.size(); i += 2) want[ids[i]] = {100 + i, i};
  check_same(taken(oc), want);
  CHECK(oc.take().empty());
}

TEST_CASE("random commits and ends; many left open across window spills; match a simple model") {
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    open_commits<std::uint64_t> oc;
    model want;
    std::vector<guid> recent;  // UOWs committed lately (ends follow closely, mostly)
    std::vector<guid> pool;    // every UOW seen
    std::uint64_t seq = 0;
    for (int step = 0; step < 40000; ++step) {
      const auto r = rng() % 100;
      if (r < 50 || pool.empty()) {  // a commit of a new UOW
        const guid g = guid::generate();
        oc.add(g, 1000 + seq, seq);
        want[g] = {1000 + seq, seq};
        ++seq;
        recent.push_back(g);
        pool.push_back(g);
      } else if (r < 95 && !recent.empty()) {  // an end for a recent commit
        const std::size_t back = std::min<std::size_t>(recent.size(), 1 + rng() % 40);
        const std::size_t k = recent.size() - back;
        const guid g = recent[k];
        recent.erase(recent.begin() + static_cast<std::ptrdiff_t>(k));
        oc.end(g);
        want.erase(g);
      } else {  // an end for any UOW seen (perhaps ended already: nothing changes)
        const guid g = pool[rng() % pool.size()];
        oc.end(g);
        want.erase(g);
        recent.erase(std::remove(recent.begin(), recent.end(), g), recent.end());
      }
      if (recent.size() > 200) recent.erase(recent.begin());  // left open for good
    }
    check_same(taken(oc), want);
  }
}

TEST_CASE("a UOW committed twice and never ended is taken once; with its later commit record") {
  open_commits<std::uint64_t> oc;
  const guid twice = guid::generate();
  oc.add(twice, 10, 0);
  for (std::uint64_t i = 1; i < 5000; ++i) oc.add(guid::generate(), 10 + i, i);  // the first moves to the map
  CHECK(oc.take().size() == 5000);  // every one open, some from the map; take() empties the set
  oc.add(twice, 10, 0);
  oc.add(guid::generate(), 11, 1);
  oc.add(twice, 12, 2);
  const model got = taken(oc);
  REQUIRE(got.count(twice) == 1);
  CHECK(got.at(twice).at == 12);
  CHECK(got.at(twice).seq == 2);
}
