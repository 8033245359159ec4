// tests/tm/guid_test.cpp
#include <catch2/catch.hpp>

#include <set>
#include <unordered_set>

#include "ktm/guid.hpp"

using ktm::guid;

TEST_CASE("generated guids are distinct version-4 ids") {
  std::set<guid> seen;
  for (int i = 0; i < 1000; ++i) {
    const guid g = guid::generate();
    CHECK((g.bytes()[6] >> 4) == 4);
    CHECK((g.bytes()[8] & 0xc0) == 0x80);
    CHECK(seen.insert(g).second);
  }
}

TEST_CASE("a guid survives a round trip through its text form") {
  const guid g = guid::generate();
  const std::string s = g.to_string();
  REQUIRE(s.size() == 36);
  CHECK(s[8] == '-');
  CHECK(s[23] == '-');
  CHECK(guid::from_string(s) == g);
}

TEST_CASE("text that is not a guid does not parse") {
  CHECK(!guid::from_string(""));
  CHECK(!guid::from_string("1b4e28ba-2fa1-11d2-883f-0016d3cca42"));    // short
  CHECK(!guid::from_string("1b4e28ba+2fa1-11d2-883f-0016d3cca427"));   // separator
  CHECK(!guid::from_string("1b4e28ba-2fa1-11d2-883f-0016d3cca42g"));   // digit
  REQUIRE(guid::from_string("1B4E28BA-2FA1-11D2-883F-0016D3CCA427"));
  CHECK(guid::from_string("1B4E28BA-2FA1-11D2-883F-0016D3CCA427")->to_string() ==
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
}

TEST_CASE("guids compare bytewise and hash consistently") {
  const guid nil;
  CHECK(nil.is_nil());
  const guid a = *guid::from_string("00000000-0000-0000-0000-000000000001");
  const guid b = *guid::from_string("00000000-0000-0000-0000-000000000002");
  CHECK(a < b);
  CHECK(a != b);
  CHECK(nil < a);
  CHECK(std::hash<guid>{}(a) == std::hash<guid>{}(*guid::from_string(a.to_string())));
  std::unordered_set<guid> set{a, b, a};
  CHECK(set.size() == 2);
}
