// The wire codec of //ktm/net/grpc: every message survives a round trip,
// and bytes that do not make a valid message are rejected, never trusted.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "ktm/net/grpc/wire_codec.hpp"
#include "ktm_superior.pb.h"
#include "tests/net/net_fixtures.hpp"

using namespace ktm;
using namespace ktm::net;
using ktm::tm::superior_message_kind;
using ktm::tm::transaction_outcome;

namespace {

const superior_message_kind every_kind[] = {
    superior_message_kind::preprepare,          superior_message_kind::prepare,
    superior_message_kind::commit,              superior_message_kind::rollback,
    superior_message_kind::outcome,             superior_message_kind::preprepare_complete,
    superior_message_kind::prepare_complete,    superior_message_kind::commit_complete,
    superior_message_kind::rollback_complete,   superior_message_kind::read_only,
    superior_message_kind::aborted,             superior_message_kind::commit_request,
    superior_message_kind::request_outcome,     superior_message_kind::recover_query,
};

// A valid message's protobuf form, for tests that damage one field.
wire::superior_message valid_wire() {
  const auto bytes = encode_wire(test::message(superior_message_kind::commit, guid::generate(), guid::generate(), 7));
  wire::superior_message w;
  REQUIRE(w.ParseFromString(bytes));
  return w;
}

}  // namespace

TEST_CASE("every message kind and outcome survives encoding and decoding unchanged") {
  for (const auto kind : every_kind) {
    for (const auto outcome : {transaction_outcome::undetermined, transaction_outcome::committed,
                               transaction_outcome::aborted}) {
      auto m = test::message(kind, guid::generate(), guid::generate(), 0xfedcba9876543210ull);
      m.outcome = outcome;
      const auto decoded = decode_wire(encode_wire(m));
      REQUIRE(decoded.has_value());
      CHECK(*decoded == m);
    }
  }
}

TEST_CASE("nil GUIDs and a zero clock survive the round trip") {
  const auto m = test::message(superior_message_kind::outcome, guid{}, guid{}, 0, guid{});
  const auto decoded = decode_wire(encode_wire(m));
  REQUIRE(decoded.has_value());
  CHECK(*decoded == m);
}

TEST_CASE("the kind ids on the wire are the stable ids of message.hpp") {
  wire::superior_message w;
  REQUIRE(w.ParseFromString(encode_wire(test::message(superior_message_kind::recover_query, guid{}, guid{}))));
  CHECK(w.kind() == 24u);
}

TEST_CASE("a kind no version knows is rejected") {
  for (const std::uint32_t kind : {0u, 6u, 15u, 25u, 255u, 256u + 2u, 0xffffffffu}) {
    auto w = valid_wire();
    w.set_kind(kind);
    CHECK_FALSE(decode_wire(w.SerializeAsString()).has_value());
  }
}

TEST_CASE("a GUID field that is not sixteen bytes is rejected") {
  for (const std::size_t length : {0u, 1u, 15u, 17u, 64u}) {
    const std::string g(length, '\x5a');
    auto from = valid_wire(), to = valid_wire(), uow = valid_wire();
    from.set_from(g);
    to.set_to(g);
    uow.set_uow(g);
    CHECK_FALSE(decode_wire(from.SerializeAsString()).has_value());
    CHECK_FALSE(decode_wire(to.SerializeAsString()).has_value());
    CHECK_FALSE(decode_wire(uow.SerializeAsString()).has_value());
  }
}

TEST_CASE("an outcome that is not committed; aborted or undetermined is rejected") {
  for (const std::uint32_t outcome : {3u, 4u, 255u, 0x80000000u}) {
    auto w = valid_wire();
    w.set_kind(5);
    w.set_outcome(outcome);
    CHECK_FALSE(decode_wire(w.SerializeAsString()).has_value());
  }
}

TEST_CASE("bytes that are not a protobuf message are rejected") {
  const auto m = test::message(superior_message_kind::prepare, guid::generate(), guid::generate(), 3);
  const std::string good = encode_wire(m);
  CHECK_FALSE(decode_wire(std::string("\xff\xff\xff\xff", 4)).has_value());  // an invalid tag
  CHECK_FALSE(decode_wire(std::string("\x12\x40", 2)).has_value());  // `from` says 64 bytes follow; none do
  // A cut inside the GUIDs leaves the message unparsable or a GUID short;
  // a cut after them loses the clock: no truncation decodes as the original.
  const std::size_t guids_end = 2 + 3 * 18;  // kind (2 bytes), then three 18-byte GUID fields
  for (std::size_t cut = 1; cut < good.size(); ++cut) {
    const auto decoded = decode_wire(std::string_view(good).substr(0, cut));
    if (cut < guids_end) CHECK_FALSE(decoded.has_value());
    CHECK(decoded != m);
  }
}

TEST_CASE("an empty message is rejected (kind 0 and empty GUIDs)") {
  CHECK_FALSE(decode_wire("").has_value());
}

TEST_CASE("random and bit-flipped bytes never decode into an invalid message") {
  std::mt19937_64 rng(20261121);
  const std::string good = encode_wire(test::message(superior_message_kind::commit, guid::generate(), guid::generate(), 11));
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 96);
      for (auto& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = good;
      bytes[rng() % bytes.size()] ^= static_cast<char>(1u << (rng() % 8));
    }
    const auto m = decode_wire(bytes);
    if (!m) continue;
    ++accepted;
    CHECK(ktm::tm::is_known(m->kind));
    CHECK(static_cast<int>(m->outcome) <= 2);
    CHECK(decode_wire(encode_wire(*m)) == m);  // what is accepted is a valid message
  }
  CHECK(accepted > 0);  // some flips only change a GUID or the clock
}

TEST_CASE("fields of a later version are ignored") {
  auto w = valid_wire();
  std::string bytes = w.SerializeAsString();
  bytes += std::string("\xb8\x06\x2a", 3);  // field 103, varint 42
  const auto m = decode_wire(bytes);
  REQUIRE(m.has_value());
  CHECK(m->clock == 7);
}
