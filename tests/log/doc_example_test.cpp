// The quick start at the top of doc/log.md, run as written.
//
// Keep the two identical: every line of that code block (but its first
// comment) is here, unchanged and in the same order; the lines between them
// only give the snippet its data (`bytes`, `undo`, `state_bytes`, `use`) and
// check what each call returned. A change to one is a change to the other.
#include <catch2/catch.hpp>

#include <cmath>  // declares ::log: the snippet must compile beside it
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// ---- doc/log.md, quick start: the includes and names ----
#include <cstdio>
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
using namespace ktm::log;
using log_t = ktm::log::log<ktm::io::memory_storage>;  // a bare `log` is ambiguous with ::log (<cmath>)
// ---- end of the includes and names ----

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  const auto b = std::as_bytes(std::span(s.data(), s.size()));
  return {b.begin(), b.end()};
}
std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct seen_record {
  lsn at, previous, undo_next;
  record_type type;
  std::string payload;
};

}  // namespace

TEST_CASE("the quick start of doc/log.md runs as written") {
  // what the snippet takes as given
  const std::vector<std::byte> bytes = bytes_of("a redo record");
  const std::vector<std::byte> undo = bytes_of("compensation");  // 12 bytes: less than the 128 reserved
  const std::vector<std::byte> state_bytes = bytes_of("checkpoint state");
  std::vector<seen_record> seen;
  const auto use = [&seen](lsn at, record_type type, lsn previous, lsn undo_next, std::span<const std::byte> payload) {
    seen.push_back({at, previous, undo_next, type, text_of(payload)});
  };

  // ---- doc/log.md, quick start: the body ----
  ktm::io::memory_storage storage;                 // must outlive the log
  log_options o;                                   // geometry: block_size, container_size, containers, io_align
  o.grow = true; o.max_containers = 16;            // log-full policy: grow ...
  o.on_full = [&](const log_full_info&) {          // ... then ask clients to advance tails
    return false; };                               // true = "I moved my base, retry"
  auto lg = log_t::create(storage, "txlog", o);    // result<log_t>
  if (!lg) std::puts(lg.error().message().c_str());
  REQUIRE(lg);
  CHECK(storage.exists("txlog.blf"));
  CHECK_FALSE(o.on_full(lg->space_info()));  // the callback answers "nothing moved"

  auto st = lg->create_stream("tm");               // multiplexed: many named streams
  REQUIRE(st);
  CHECK(lg->streams() == std::vector<std::string>{"tm"});
  auto ma = st->marshalling_area();                // the stream's writer (one at a time)
  REQUIRE(ma);
  CHECK(st->marshalling_area().code() == ktm::errc::writer_exists);
  auto l1 = ma->append(bytes, record_type::data);                        // queued
  REQUIRE(l1);
  CHECK_FALSE(*l1 < lg->durable_lsn());  // not durable yet
  auto l2 = ma->append(bytes, record_type::data, append_flags::force);   // durable on return
  REQUIRE(l2);
  CHECK(*l1 < *l2);
  CHECK(*l2 < lg->durable_lsn());
  auto rs = ma->reserve(1, 128);                   // room for a compensation record
  REQUIRE(rs);
  CHECK(ma->reserved_records() == 1);
  CHECK(ma->reserved_bytes() == 128);
  auto l3 = ma->append(undo, record_type::data, append_flags::use_reservation, /*undo_next*/ *l1);
  REQUIRE(l3);
  CHECK(*l2 < *l3);
  CHECK(ma->reserved_records() == 0);
  CHECK(ma->reserved_bytes() == 128 - static_cast<std::int64_t>(undo.size()));
  auto rl = ma->reserve(-ma->reserved_records(), -ma->reserved_bytes());  // negative values release what l3 left
  REQUIRE(rl);
  CHECK(ma->reserved_records() == 0);
  CHECK(ma->reserved_bytes() == 0);
  auto next = ma->flush_to_lsn(*l1);               // every record <= l1 durable; next unflushed LSN
  REQUIRE(next);
  CHECK(*l1 < *next);
  CHECK(*next <= *l3);  // l3 was queued, not forced
  CHECK(*next <= lg->durable_lsn());

  // the restart area goes through the open writer: the stream's own call
  // would be a second writer
  CHECK(st->write_restart_area(state_bytes, *l2).code() == ktm::errc::writer_exists);
  auto ra_at = ma->write_restart_area(state_bytes, /*new base*/ *l2);  // via the writer; appended + forced atomically
  REQUIRE(ra_at);
  CHECK(*l3 < *ra_at);
  CHECK(*ra_at < lg->durable_lsn());
  CHECK(st->base_lsn() == *l2);
  auto ra = st->read_restart_area();               // latest; read_previous_restart_area(*ra) walks back
  REQUIRE(ra);
  CHECK(ra->at == *ra_at);
  CHECK(ra->new_base == *l2);
  CHECK(text_of(ra->data) == "checkpoint state");
  CHECK(st->read_previous_restart_area(*ra).code() == ktm::errc::no_restart_area);  // the first one
  auto ab = st->advance_base(*l3);                 // older records become reclaimable
  REQUIRE(ab);
  CHECK(st->base_lsn() == *l3);
  CHECK(st->read_record(*l2).code() == ktm::errc::before_base);

  for (const log_record& r : st->read_forward())   // also read_backward(from), read_undo_next(from)
    use(r.at, r.type, r.previous, r.undo_next, r.payload);   // payload valid until the next record
  // ---- end of the body ----

  // from the base (l3) on: the compensation record and the restart area
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].at == *l3);
  CHECK(seen[0].type == record_type::data);
  CHECK(seen[0].previous == *l2);
  CHECK(seen[0].undo_next == *l1);
  CHECK(seen[0].payload == "compensation");
  CHECK(seen[1].at == *ra_at);
  CHECK(seen[1].type == record_type::restart);
  CHECK(seen[1].previous == *l3);
  CHECK(seen[1].undo_next.is_null());  // no earlier restart area
  CHECK(seen[1].payload.substr(8) == "checkpoint state");  // after the 8-byte new base
}
