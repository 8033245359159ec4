// tests/rm/change_log_test.cpp: change_log's logging, outcomes, reservations
// and record validation.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "ktm/io/memory_device.hpp"
#include "ktm/rm.hpp"
#include "tests/rm/rm_fixtures.hpp"

using namespace ktm::rm;
using ktm::errc;
using ktm::guid;
using ktm::io::memory_storage;
using env = ktm::test::rm_env<memory_storage>;
namespace kl = ktm::log;

namespace {
std::span<const std::byte> bytes(const std::vector<std::byte>& v) { return v; }

// A new log on memory storage with a change log, recovered (empty).
struct started_env {
  memory_storage io;
  env e{io};
  started_env() {
    REQUIRE(e.start(true));
    REQUIRE(e.cl->recover());
  }
};
}  // namespace

TEST_CASE_METHOD(started_env, "log_change appends a before-image and an after-image chained per transaction through undo-next LSNs") {
  e.store.apply("a", std::string("old-a"));
  const guid t1 = guid::generate(), t2 = guid::generate();
  REQUIRE(e.cl->log_change(t1, "a", std::string_view("old-a"), std::string_view("new-a")));
  REQUIRE(e.cl->log_change(t2, "x", std::nullopt, std::string_view("x2")));  // interleaved
  REQUIRE(e.cl->log_change(t1, "b", std::nullopt, std::string_view("new-b")));
  REQUIRE(e.cl->log_change(t1, "a", std::string_view("new-a"), std::nullopt));  // then erased

  auto chain = ktm::test::decode_chain(*e.st, e.cl->last_lsn(t1));
  REQUIRE(chain.size() == 6);  // t2's record is not on t1's chain
  for (const auto& r : chain) CHECK(r.uow == t1);
  CHECK(chain[0].kind == change_kind::after_image);
  CHECK(chain[0].key == "a");
  CHECK(!chain[0].value);
  CHECK(chain[1].kind == change_kind::before_image);
  CHECK(chain[1].value == std::string("new-a"));
  CHECK(chain[2].kind == change_kind::after_image);
  CHECK(chain[2].value == std::string("new-b"));
  CHECK(chain[3].kind == change_kind::before_image);
  CHECK(!chain[3].value);
  CHECK(chain[4].value == std::string("new-a"));
  CHECK(chain[5].kind == change_kind::before_image);
  CHECK(chain[5].value == std::string("old-a"));
  CHECK(ktm::test::decode_chain(*e.st, e.cl->last_lsn(t2)).size() == 2);

  // the permanent store is untouched until commit
  CHECK(e.store.copy() == std::map<std::string, std::string>{{"a", "old-a"}});
  auto ch = e.cl->changes(t1);
  REQUIRE(ch.size() == 3);
  CHECK(ch[0].before_at < ch[0].after_at);
  CHECK(ch[2].after_at == e.cl->last_lsn(t1));
}

TEST_CASE_METHOD(started_env, "commit applies the after-images in log order and appends a commit record on the chain") {
  e.store.apply("gone", std::string("1"));
  const guid t = guid::generate();
  REQUIRE(e.cl->log_change(t, "k", std::nullopt, std::string_view("v1")));
  REQUIRE(e.cl->log_change(t, "k", std::string_view("v1"), std::string_view("v2")));
  REQUIRE(e.cl->log_change(t, "gone", std::string_view("1"), std::nullopt));
  auto p = e.cl->prepare(t);
  REQUIRE(p);
  auto c = e.cl->commit(t);
  REQUIRE(c);
  CHECK(e.store.copy() == std::map<std::string, std::string>{{"k", "v2"}});
  CHECK_FALSE(e.cl->contains(t));
  auto rec = e.st->read_record(*c);
  REQUIRE(rec);
  CHECK(rec->undo_next == *p);
  auto d = decode_record(rec->payload, rec->at);
  REQUIRE(d);
  CHECK(d->kind == change_kind::commit);
  CHECK(d->uow == t);
  // an outcome twice: the second finds nothing to do
  CHECK(e.cl->commit(t).code() == errc::transaction_not_found);
  CHECK(e.cl->rollback(t).code() == errc::transaction_not_found);
}

TEST_CASE_METHOD(started_env, "rollback walks the undo-next chain restoring before-images newest first and leaves the store alone") {
  e.store.apply("a", std::string("A"));
  std::map<std::string, std::string> copy = e.store.copy();  // the caller's private copy, changed in place
  const guid t = guid::generate();
  auto change = [&](std::string k, std::optional<std::string> v) {
    image before;
    if (auto it = copy.find(k); it != copy.end()) before = it->second;
    REQUIRE(e.cl->log_change(t, k, before ? image_view(*before) : std::nullopt, v ? image_view(*v) : std::nullopt));
    if (v) copy[k] = *v;
    else copy.erase(k);
  };
  change("a", "A1");
  change("b", "B1");
  change("a", std::nullopt);
  change("a", "A3");
  REQUIRE(copy == std::map<std::string, std::string>{{"a", "A3"}, {"b", "B1"}});
  std::vector<std::string> order;
  auto r = e.cl->rollback(t, [&](std::string_view k, const image& before) {
    order.emplace_back(k);
    if (before) copy[std::string(k)] = *before;
    else copy.erase(std::string(k));
  });
  REQUIRE(r);
  CHECK(order == std::vector<std::string>{"a", "a", "b", "a"});
  CHECK(copy == std::map<std::string, std::string>{{"a", "A"}});
  CHECK(e.store.copy() == std::map<std::string, std::string>{{"a", "A"}});
  auto rec = e.st->read_record(*r);
  REQUIRE(rec);
  CHECK(decode_record(rec->payload, rec->at)->kind == change_kind::abort);
}

TEST_CASE_METHOD(started_env, "prepare forces its record unless asked to queue it, and is refused after prepare for new changes") {
  const guid t1 = guid::generate(), t2 = guid::generate();
  REQUIRE(e.cl->log_change(t1, "a", std::nullopt, std::string_view("1")));
  REQUIRE(e.cl->log_change(t2, "b", std::nullopt, std::string_view("2")));
  const auto f0 = e.lg->device_flushes();
  auto q = e.cl->prepare(t1, durability::queue_only);
  REQUIRE(q);
  CHECK(e.lg->device_flushes() == f0);
  CHECK(e.lg->durable_lsn() <= *q);
  auto f = e.cl->prepare(t2);
  REQUIRE(f);
  CHECK(e.lg->device_flushes() > f0);
  CHECK(e.lg->durable_lsn() > *f);
  CHECK(e.lg->durable_lsn() > *q);  // one flush covers the queued one too
  CHECK(e.cl->prepare(t1) .value() == *q);  // idempotent
  CHECK(e.cl->is_prepared(t1));
  CHECK(e.cl->log_change(t1, "c", std::nullopt, std::string_view("3")).code() == errc::invalid_state);
  CHECK(e.cl->prepare(guid::generate()).code() == errc::transaction_not_found);
}

TEST_CASE("the outcome reservation lets rollback and commit succeed when the log is otherwise full") {
  memory_storage io;
  auto o = ktm::test::rm_log_options();
  o.grow = false;
  env e(io, o);
  REQUIRE(e.start(true));
  REQUIRE(e.cl->recover());
  const guid a = guid::generate(), b = guid::generate(), c = guid::generate();
  REQUIRE(e.cl->log_change(a, "a", std::nullopt, std::string_view("1")));
  REQUIRE(e.cl->log_change(c, "c", std::nullopt, std::string_view("3")));
  REQUIRE(e.cl->prepare(c));
  const std::string big(300, 'x');
  ktm::result<void> r;
  int n = 0;
  for (; n < 10000; ++n) {
    r = e.cl->log_change(b, "k" + std::to_string(n), std::nullopt, big);
    if (!r) break;
  }
  REQUIRE_FALSE(r);
  CHECK((r.code() == errc::log_full || r.code() == errc::tail_pinned));
  CHECK(n > 5);
  // a new transaction cannot even start: the log is full
  CHECK_FALSE(e.cl->log_change(guid::generate(), "z", std::nullopt, std::string_view("z")));
  // but every live one can end
  CHECK(e.cl->rollback(b));
  CHECK(e.cl->rollback(a));
  CHECK(e.cl->commit(c));
  CHECK(e.store.copy() == std::map<std::string, std::string>{{"c", "3"}});
  CHECK(e.cl->live_transactions() == 0);
  CHECK(e.cl->writer().reserved_records() == 0);
}

TEST_CASE("records round-trip through their layout and every bad length is a corrupt record naming its LSN") {
  const guid u = guid::generate();
  const kl::lsn at(3, 8, 1);
  auto b = encode_record(change_kind::after_image, u, "key", std::string_view("value"));
  REQUIRE(b.size() == record_fixed_size + 3 + 5);
  CHECK(std::to_integer<int>(b[0]) == 2);
  CHECK(std::to_integer<int>(b[17]) == 3);  // key length, little-endian
  auto d = decode_record(bytes(b), at);
  REQUIRE(d);
  CHECK(d->key == "key");
  CHECK(d->value == std::string("value"));
  auto absent = encode_record(change_kind::before_image, u, "k");
  CHECK(decode_record(bytes(absent), at)->value == std::nullopt);

  auto expect_corrupt = [&](std::vector<std::byte> p) {
    auto r = decode_record(bytes(p), at);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::corrupt_record);
    CHECK(r.error().where.what == ktm::position::kind::lsn);
    CHECK(r.error().where.value == at.raw());
  };
  for (std::size_t cut = 0; cut < b.size(); ++cut) expect_corrupt({b.begin(), b.begin() + static_cast<long>(cut)});
  auto longer = b;
  longer.push_back(std::byte{0});
  expect_corrupt(longer);
  auto huge_key = b;
  huge_key[20] = std::byte{0x7f};  // key length 0x7f000003
  expect_corrupt(huge_key);
  auto huge_value = b;
  huge_value[24] = std::byte{0x10};
  expect_corrupt(huge_value);
  auto bad_kind = b;
  bad_kind[0] = std::byte{9};
  expect_corrupt(bad_kind);
  auto nil_uow = encode_record(change_kind::commit, guid{});
  expect_corrupt(nil_uow);
  auto keyed_commit = encode_record(change_kind::commit, u, "k");
  expect_corrupt(keyed_commit);
  auto empty_snapshot = encode_record(change_kind::snapshot, u, "k");
  expect_corrupt(empty_snapshot);

  checkpoint_info ci{u, kl::lsn(1, 0, 1), kl::lsn(1, 0, 0), 2};
  auto rp = encode_restart(ci);
  const kl::lsn ra(1, 4, 0);
  auto back = decode_restart(rp, ra);
  REQUIRE(back);
  CHECK(back->checkpoint_at == ci.checkpoint_at);
  CHECK(back->entries == 2);
  CHECK(decode_restart(rp, kl::lsn(1, 0, 1)).code() == errc::corrupt_restart_area);  // not before the restart area
  rp[0] = std::byte{0};
  CHECK(decode_restart(rp, ra).code() == errc::corrupt_restart_area);
}

TEST_CASE("recovery reports a corrupt record of the stream with its LSN and the stream name") {
  memory_storage io;
  env e(io);
  REQUIRE(e.start(true, false));
  kl::lsn bad_at;
  {
    auto w = e.st->marshalling_area();
    REQUIRE(w);
    auto good = encode_record(change_kind::before_image, guid::generate(), "k", std::string_view("v"));
    REQUIRE(w->append(bytes(good)));
    auto bad = good;
    bad[18] = std::byte{0xff};  // key length far beyond the payload
    auto l = w->append(bytes(bad));
    REQUIRE(l);
    bad_at = *l;
  }
  auto w = e.st->marshalling_area();
  REQUIRE(w);
  change_log<memory_storage, map_store> cl(*e.st, std::move(*w), e.store);
  auto r = cl.recover();
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::corrupt_record);
  CHECK(r.error().where.value == bad_at.raw());
  CHECK(r.error().file == "rm");
  CHECK(r.error().message().find("at LSN") != std::string::npos);
}

TEST_CASE("an after-image with no before-image of its transaction is corrupt at recovery") {
  memory_storage io;
  env e(io);
  REQUIRE(e.start(true, false));
  {
    auto w = e.st->marshalling_area();
    auto orphan = encode_record(change_kind::after_image, guid::generate(), "k", std::string_view("v"));
    REQUIRE(w->append(bytes(orphan)));
  }
  auto w = e.st->marshalling_area();
  change_log<memory_storage, map_store> cl(*e.st, std::move(*w), e.store);
  CHECK(cl.recover().code() == errc::corrupt_record);
}

TEST_CASE("the worked example of doc/resource_managers.md encodes byte for byte") {
  const guid u = *guid::from_string("1b4e28ba-2fa1-11d2-883f-0016d3cca427");
  auto hex = [](const std::vector<std::byte>& b) {
    std::string s;
    for (std::byte x : b) {
      static constexpr char d[] = "0123456789abcdef";
      s += d[std::to_integer<int>(x) >> 4];
      s += d[std::to_integer<int>(x) & 15];
    }
    return s;
  };
  const std::string uow = "1b4e28ba2fa111d2883f0016d3cca427";
  CHECK(hex(encode_record(change_kind::before_image, u, "k")) == "01" + uow + "01000000" + "6b" + "ffffffff");
  CHECK(hex(encode_record(change_kind::after_image, u, "k", std::string_view("v1"))) ==
        "02" + uow + "01000000" + "6b" + "02000000" + "7631");
  CHECK(hex(encode_record(change_kind::prepare, u)) == "03" + uow + "00000000" + "ffffffff");
  CHECK(encode_restart({u, kl::lsn(1, 0, 1), kl::lsn(1, 0, 0), 0}).size() == 44);
}
