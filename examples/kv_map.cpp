// examples/kv_map.cpp: a durable transactional map on real files.
//
// One multiplexed log in a temp dir holds two streams: "tm" (the transaction
// manager's commit records) and "map" (the map's before/after images). The
// program commits a transaction, rolls one back, leaves one unfinished,
// crashes (drops every handle without flushing), recovers the map from its
// stream, resolves what is in doubt from the TM's stream, and checkpoints.
//
// The durable TM and its recovery are not part of ktm yet: `tm_stream_log`
// below is a minimal log backend over a ktm::log stream, and step 4 reads the
// TM's commit records by hand, as the durable TM's recovery will.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"

namespace {

using io_type = ktm::io::posix_storage;
using map_type = ktm::rm::transactional_map<io_type>;

template <class R>
auto must(R&& r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "kv_map: %s: %s\n", what, r.error().message().c_str());
    std::exit(1);
  }
  return std::move(*r);
}
void must_void(const ktm::result<void>& r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "kv_map: %s: %s\n", what, r.error().message().c_str());
    std::exit(1);
  }
}

// The TM's log backend: appends to the "tm" stream of the shared log.
struct tm_stream_log {
  using lsn_type = std::uint64_t;
  static constexpr bool durable = true;
  std::shared_ptr<ktm::log::marshalling_area<io_type>> w;

  ktm::result<lsn_type> append(std::span<const std::byte> b, ktm::tm::log_append_mode m) {
    auto f = m == ktm::tm::log_append_mode::force ? ktm::log::append_flags::force : ktm::log::append_flags::none;
    auto r = w->append(b, ktm::log::record_type::data, f);
    if (!r) return std::move(r).error();
    return r->raw();
  }
  ktm::result<lsn_type> flush_to(lsn_type l) {
    auto r = w->flush_to_lsn(ktm::log::lsn(l));
    if (!r) return std::move(r).error();
    return r->raw();
  }
  ktm::result<lsn_type> write_restart_area(std::span<const std::byte> b) {
    auto r = w->write_restart_area(b);
    if (!r) return std::move(r).error();
    return r->raw();
  }
  ktm::result<lsn_type> read_restart_area(std::vector<std::byte>&) { return ktm::errc::no_restart_area; }
  ktm::result<lsn_type> read_record(lsn_type, std::vector<std::byte>&) { return ktm::errc::end_of_stream; }
};
using tm_type = ktm::tm::basic_transaction_manager<ktm::tm::with_log<tm_stream_log>,
                                                   ktm::tm::with_storage<ktm::tm::static_storage<map_type>>>;

void print(const char* label, const std::map<std::string, std::string>& m) {
  std::printf("   %s {", label);
  const char* sep = "";
  for (const auto& [k, v] : m) std::printf("%s%s=%s", sep, k.c_str(), v.c_str()), sep = ", ";
  std::printf("}\n");
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/ktm-kv-XXXXXX";
  if (!::mkdtemp(tmpl)) return std::perror("mkdtemp"), 1;
  io_type io{std::string(tmpl)};
  ktm::log::log_options opt;
  opt.container_size = 1 << 20;
  opt.persist_on_close = false;  // dropping the handles is a crash, not a shutdown
  const ktm::guid map_id = ktm::guid::generate();  // an RM keeps its id across restarts
  ktm::rm::transactional_map_options mo;
  mo.prepare = ktm::rm::durability::queue_only;  // the TM's forced commit record flushes it

  std::printf("1. a log in %s with streams tm and map; the map enlisted in a durable TM\n", tmpl);
  {
    auto lg = must(ktm::log::log<io_type>::create(io, "kv", opt), "create log");
    auto tm_stream = must(lg.create_stream("tm"), "create stream tm");
    auto map_stream = must(lg.create_stream("map"), "create stream map");
    map_type map(map_stream, must(map_stream.marshalling_area(), "map writer"), mo, map_id);
    must(map.recover(), "recover (new stream)");
    tm_type tm(ktm::tm::log_arg, tm_stream_log{std::make_shared<ktm::log::marshalling_area<io_type>>(
                                      must(tm_stream.marshalling_area(), "tm writer"))},
               map);
    must(tm.recover(), "tm online");

    {
      auto tx = tm.begin();
      must_void(map.put(tx, "alice", "100"), "put");
      must_void(map.put(tx, "bob", "50"), "put");
      const auto flushes = lg.device_flushes();
      must_void(tx.commit(), "commit");
      std::printf("2. committed alice=100, bob=50 with %llu device flush(es)\n",
                  static_cast<unsigned long long>(lg.device_flushes() - flushes));
    }
    {
      auto tx = tm.begin();
      must_void(map.put(tx, "alice", "0"), "put");
      std::printf("3. a transaction sets alice=0 and reads back %s, then rolls back\n",
                  map.get(tx, "alice").value()->c_str());
      must_void(tx.rollback(), "rollback");
    }
    print("committed:", map.snapshot());

    // unfinished work: a client wrote but never committed (named by a bare UOW)
    const ktm::guid unfinished = ktm::guid::generate();
    must_void(map.put(unfinished, "mallory", "1000000"), "put");
    {
      auto tx = tm.begin();
      must_void(map.put(tx, "carol", "7"), "put");
      must_void(map.erase(tx, "bob"), "erase");
      must_void(tx.commit(), "commit");
    }
    std::printf("4. committed carol=7 and erased bob; mallory's transaction is unfinished; crash\n");
    print("committed:", map.snapshot());
  }  // crash: the map's lazy commit record for carol was never flushed

  std::printf("5. reopen and recover the map from its stream\n");
  auto lg = must(ktm::log::log<io_type>::open(io, "kv", opt), "open log");
  std::set<ktm::guid> tm_commits;  // what the durable TM's recovery will find in its stream
  for (const auto& r : must(lg.open_stream("tm"), "open stream tm").read_forward()) {
    if (r.payload.size() < 28 || std::to_integer<int>(r.payload[0]) != 1) continue;
    ktm::guid::bytes_type g;
    for (std::size_t i = 0; i < 16; ++i) g[i] = std::to_integer<std::uint8_t>(r.payload[12 + i]);
    tm_commits.insert(ktm::guid(g));
  }
  auto map_stream = must(lg.open_stream("map"), "open stream map");
  map_type map(map_stream, must(map_stream.marshalling_area(), "map writer"), mo, map_id);
  auto rep = must(map.recover(), "recover");
  std::printf("   redone %zu, discarded %zu (no prepare: presumed abort), in doubt %zu, scanned %zu records\n",
              rep.redone, rep.discarded, rep.in_doubt.size(), rep.records_scanned);
  for (const auto& t : rep.in_doubt) {
    const bool commit = tm_commits.count(t.uow) != 0;
    std::printf("   in doubt %s (%zu changes): the TM's log says %s\n", t.uow.to_string().c_str(), t.changes.size(),
                commit ? "commit" : "nothing (abort)");
    must_void(map.resolve(t.uow, commit ? ktm::rm::outcome::commit : ktm::rm::outcome::abort), "resolve");
  }
  print("recovered:", map.snapshot());

  auto ck = must(map.checkpoint(), "checkpoint");
  std::printf("6. checkpoint: restart area at LSN %s, the map stream's base moved to %s\n", ck.to_string().c_str(),
              map_stream.base_lsn().to_string().c_str());
  const auto expected = std::map<std::string, std::string>{{"alice", "100"}, {"carol", "7"}};
  if (map.snapshot() != expected) {
    std::fprintf(stderr, "kv_map: recovered state differs from the committed one\n");
    return 1;
  }
  std::printf("done: the recovered map is the committed state\n");
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return 0;
}
