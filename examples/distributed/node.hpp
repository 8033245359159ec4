// examples/distributed/node.hpp: one node of a distributed system: a durable
// superior_transaction_manager and one durable RM (a transactional_map) in
// one multiplexed log in a directory, reached by the other nodes through a
// grpc_transport on 127.0.0.1.
//
//   node_config c{.dir = "/data/n1", .index = 1, .ports = {7000, 7001, 7002, 7003}};
//   crash_points cp;
//   node n(c, cp);       // opens or creates the log, listens on ports[index]
//   n.connect(c.ports);  // the other nodes are peers
//   n.start();           // recovers the map, the TM, the map's enlistments; ticks
//   n.commit_distributed({{"k", "v"}});   // node 0: one transaction over every node
//
// Node 0 is the superior: commit_distributed() begins a transaction,
// enlists every other node's TM as a subordinate, writes "tx/<uow>" (and
// the given pairs) in its map and commits. Nodes 1.. are subordinates: a
// transaction joins them when its superior's first PREPREPARE arrives (the
// node begins it with the superior's UOW, makes the sender its superior and
// writes "tx/<uow>" = "node <index>" in its map); a joined transaction not
// prepared after config.idle_abort is rolled back by the node (its superior
// forgot it: presumed abort). Ids are fixed by the index (same on every
// run), so a node restarted on its directory recovers and rejoins: its TM
// redelivers the outcomes it logged and asks about what it left in doubt
// (wait_in_doubt: it waits for its superior, however long).
//
// A ticker thread calls tm.tick() every config.tick and reports (config.
// print) "STATE quiet" / "STATE busy" when that changes: quiet = nothing
// unanswered, nothing joined, nothing in doubt (and, node 0, its own work
// done: set_working). Before a clean shutdown, wait_for_end_records().
// The log lives in <dir>/log (made complete in <dir>/log.new, then
// renamed). Startup errors throw std::runtime_error.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "examples/distributed/crash_points.hpp"
#include "examples/distributed/node_transport.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/net/grpc/grpc_transport.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"

namespace ktm::distributed {

struct node_config {
  std::string dir;                 // an existing directory: the log lives here
  int index = 0;                   // 0: the superior; 1..: subordinates
  std::vector<int> ports;          // node i listens on 127.0.0.1:ports[i]
  std::chrono::milliseconds tick{20};
  std::chrono::milliseconds idle_abort{3000};
  bool print = true;               // one line per event on stdout
  bool listen = true;              // false: no server, no peers (offline inspection)
};

using node_io = hooked_storage<io::posix_storage>;
using node_map = rm::transactional_map<node_io>;
using node_tm = tm::superior_transaction_manager<
    tm::with_transport<node_transport>, tm::with_log<tm::durable_log_for<node_io>>,
    tm::with_recovery<tm::replay_recovery<1024, tm::wait_in_doubt>>, tm::with_storage<tm::dynamic_storage>>;

// The fixed ids of node i's TM and RM.
inline guid node_tm_id(int i) {
  guid::bytes_type b{0x6b, 0x74, 0x6d, 0x2d, 0x6e, 0x6f, 0x64, 0x65, 0x2d, 0x74, 0x6d, 0, 0, 0, 0, 0};
  b[15] = static_cast<std::uint8_t>(i);
  return guid(b);
}
inline guid node_rm_id(int i) {
  guid::bytes_type b{0x6b, 0x74, 0x6d, 0x2d, 0x6e, 0x6f, 0x64, 0x65, 0x2d, 0x72, 0x6d, 0, 0, 0, 0, 0};
  b[15] = static_cast<std::uint8_t>(i);
  return guid(b);
}

// The value of r, or std::runtime_error naming `what`.
template <class R>
auto must(R&& r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  if constexpr (!std::is_same_v<std::remove_cvref_t<R>, result<void>>) return std::move(*r);
}

class node {
 public:
  node(node_config c, crash_points& cp)
      : cfg_(std::move(c)), cp_(&cp), io_(prepared_dir(), cp), wire_(wire_options()), bus_(wire_, cp) {
    if (cfg_.listen && wire_.status()) throw std::runtime_error("listen: " + wire_.status().message());
    lg_.emplace(must(log::log<node_io>::open(io_, "txlog", log_options()), "log"));
    ts_.emplace(must(lg_->open_stream("tm"), "tm stream"));
    auto ms = must(lg_->open_stream("map"), "map stream");
    rm::transactional_map_options mo;
    mo.prepare = rm::durability::queue_only;  // the TM's forced record, later in the same log, covers it
    mo.checkpoint_every = 256;
    map_.emplace(ms, must(ms.marshalling_area(), "map writer"), mo, node_rm_id(cfg_.index));
    bus_.before_delivery([this](const tm::superior_message& m) { return before_delivery(m); });
  }
  ~node() {
    stop_.store(true);
    if (ticker_.joinable()) ticker_.join();
    std::lock_guard l(mu_);
    // Transactions still joined wait for an outcome that may never come
    // (their destructor would wait): left to the next run's recovery.
    for (auto& [uow, j] : joined_) (void)new std::shared_ptr<node_tm::transaction>(std::move(j.tx));
  }
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  int port() const { return wire_.port(); }
  const node_config& config() const { return cfg_; }
  node_tm& tm() { return *tm_; }
  node_map& map() { return *map_; }
  node_transport& transport() { return bus_; }
  log::log<node_io>& log() { return *lg_; }
  bool superior() const { return cfg_.index == 0; }

  // Every other node is a peer (the superior's subordinates, or a
  // subordinate's superior): node i at 127.0.0.1:ports[i].
  void connect(const std::vector<int>& ports) {
    for (std::size_t i = 0; i < ports.size(); ++i) {
      const int n = static_cast<int>(i);
      if (n == cfg_.index || !cfg_.listen) continue;
      if ((n == 0) == superior()) continue;  // subordinates talk to the superior only
      (void)wire_.add_peer(node_tm_id(n), "127.0.0.1:" + std::to_string(ports[i]));
      if (n > 0) subordinates_.push_back(node_tm_id(n));
    }
  }

  // Recovers the map, the TM and the map's enlistments; then (listen) ticks.
  tm::recovery_summary start() {
    must(map_->recover(), "map recovery");
    tm_.emplace(bus_, tm::log_arg, *ts_, node_tm_id(cfg_.index));
    must(tm_->add_resource_manager(*map_), "add the map");
    auto r = must(tm_->recover(), "tm recovery");
    must(tm_->recover_resource_manager(*map_), "map's enlistments");
    online_.store(true);
    cp_->enable();
    say("ONLINE node=%d in_doubt=%zu redelivered=%zu", cfg_.index, static_cast<std::size_t>(r.in_doubt),
        static_cast<std::size_t>(r.redelivered));
    if (cfg_.listen) ticker_ = std::thread([this] { tick_loop(); });
    return r;
  }

  // Node 0: one transaction over every subordinate; its map gets
  // "tx/<uow>" and `writes`. The outcome, as commit() returns it.
  result<void> commit_distributed(const std::vector<std::pair<std::string, std::string>>& writes, guid* uow = nullptr) {
    auto tx = tm_->begin();
    if (uow) *uow = tx.id();
    for (const guid& s : subordinates_) KTM_TRY(tm_->enlist_subordinate(tx, s));
    KTM_TRY(map_->put(tx, "tx/" + tx.id().to_string(), "node 0"));
    for (const auto& [k, v] : writes) KTM_TRY(map_->put(tx, k, v));
    return tx.commit();
  }

  // Waits (ticking) until every commit record of the TM has its end record
  // appended, at most `limit`; the log's counters when it returns. Called
  // when the node is quiet, before a clean shutdown.
  tm::durable_log_stats wait_for_end_records(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto st = tm_->log().stats();
      if ((st.pending == 0 && st.unresolved == 0) || std::chrono::steady_clock::now() > end) return st;
      std::this_thread::sleep_for(cfg_.tick);
    }
  }

  // Node 0: whether its own work is still running (quiet needs it done).
  void set_working(bool w) { working_.store(w); }

  // Prints a line (config.print), whole, from any thread.
  void say(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!cfg_.print) return;
    std::lock_guard l(print_mu_);
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  struct joined_tx {
    std::shared_ptr<node_tm::transaction> tx;
    std::chrono::steady_clock::time_point since;
  };

  std::string live_dir() const { return cfg_.dir + "/log"; }

  static log::log_options log_options() {
    log::log_options o;
    o.container_size = 4u << 20;
    o.containers = 2;
    o.grow = true;
    o.max_containers = 64;
    return o;
  }

  // A new log with its two streams, made in <dir>/log.new and renamed to
  // <dir>/log when complete: a node killed while creating its log finds
  // none at its next start (log::create leaves a log that neither opens
  // nor can be created again when it is interrupted).
  // The log's directory, the log created first if there is none.
  io::posix_storage prepared_dir() {
    if (!std::filesystem::exists(live_dir())) create_log();
    return io::posix_storage(live_dir());
  }
  void create_log() {
    const std::string staging = cfg_.dir + "/log.new";
    std::filesystem::remove_all(staging);
    std::filesystem::create_directories(staging);
    {
      io::posix_storage st(staging);
      auto lg = must(log::log<io::posix_storage>::create(st, "txlog", log_options()), "create log");
      must(lg.create_stream("tm"), "create tm stream");
      must(lg.create_stream("map"), "create map stream");
    }  // closed: flushed
    std::filesystem::rename(staging, live_dir());
    const int fd = ::open(cfg_.dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0 || ::fsync(fd) != 0) throw std::runtime_error("fsync " + cfg_.dir);
    ::close(fd);
  }

  net::grpc_transport_options wire_options() const {
    net::grpc_transport_options o;
    o.listen_address = cfg_.listen ? "127.0.0.1:" + std::to_string(cfg_.ports.at(cfg_.index)) : "";
    o.rpc_timeout = std::chrono::milliseconds(1000);
    o.reconnect_max = std::chrono::milliseconds(200);
    return o;
  }

  // False: dropped (the sender resends).
  bool before_delivery(const tm::superior_message& m) {
    if (!online_.load()) return false;
    if (superior() || m.kind != tm::superior_message_kind::preprepare) return true;
    std::lock_guard l(mu_);
    if (seen_.count(m.uow) || tm_->recovered_outcome(m.uow) != tm::transaction_outcome::aborted) return true;
    seen_.insert(m.uow);
    auto tx = std::make_shared<node_tm::transaction>(*tm_, m.uow);
    auto r = tm_->enlist_superior(*tx, m.from);
    if (r) r = map_->put(*tx, "tx/" + m.uow.to_string(), "node " + std::to_string(cfg_.index));
    if (!r) {
      std::fprintf(stderr, "node %d: could not join %s: %s\n", cfg_.index, m.uow.to_string().c_str(),
                   r.error().message().c_str());
      (void)tx->rollback();
      return true;  // the TM answers what it knows
    }
    joined_[m.uow] = joined_tx{std::move(tx), std::chrono::steady_clock::now()};
    say("JOINED %s", m.uow.to_string().c_str());
    return true;
  }

  void tick_loop() {
    bool quiet = false;
    bool first = true;
    while (!stop_.load()) {
      const std::size_t sent = tm_->tick();
      const bool settled = sweep();
      const bool now_quiet = sent == 0 && settled && tm_->in_doubt_count() == 0 && !working_.load();
      if (first || now_quiet != quiet) say("STATE %s", now_quiet ? "quiet" : "busy");
      quiet = now_quiet;
      first = false;
      std::this_thread::sleep_for(cfg_.tick);
    }
  }

  // Reports and forgets finished joined transactions, rolls back those
  // idle too long; true when none is left.
  bool sweep() {
    std::vector<std::shared_ptr<node_tm::transaction>> done;
    {
      std::lock_guard l(mu_);
      const auto now = std::chrono::steady_clock::now();
      for (auto it = joined_.begin(); it != joined_.end();) {
        auto& tx = *it->second.tx;
        if (tx.is_done()) {
          say("SUB %s %s", it->first.to_string().c_str(),
              tx.outcome() == tm::transaction_outcome::committed ? "committed" : "aborted");
          done.push_back(std::move(it->second.tx));
          it = joined_.erase(it);
          continue;
        }
        const auto st = tx.internal_state();
        if (now - it->second.since > cfg_.idle_abort &&
            (st == tm::tx_state::active || st == tm::tx_state::preprepared))
          (void)tx.rollback();
        ++it;
      }
    }
    std::lock_guard l(mu_);
    return joined_.empty();
  }

  node_config cfg_;
  crash_points* cp_;
  node_io io_;
  std::optional<log::log<node_io>> lg_;
  std::optional<log::stream<node_io>> ts_;
  std::optional<node_map> map_;
  net::grpc_transport wire_;
  node_transport bus_;
  std::vector<guid> subordinates_;
  std::mutex mu_;
  std::map<guid, joined_tx> joined_;
  std::set<guid> seen_;
  std::optional<node_tm> tm_;
  std::atomic<bool> online_{false}, stop_{false}, working_{false};
  std::mutex print_mu_;
  std::thread ticker_;
};

}  // namespace ktm::distributed
