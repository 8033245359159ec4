// examples/bank/bank_impl.hpp: the bank's member functions (bank.hpp).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "examples/bank/bank.hpp"
#include "ktm/io/posix_directory.hpp"

namespace bank {

namespace detail {

inline bool retryable(const std::error_code& c) {
  return c == make_error_code(ktm::errc::timed_out) || c == make_error_code(ktm::errc::transaction_aborted);
}

template <class R>
void must(const R& r, const std::string& what) {
  if (!r) throw bank_error(what + ": " + r.error().message());
}

inline std::string shard_stream(std::size_t i) { return "shard" + std::to_string(i); }

// Creates `dir` and any missing parents (like mkdir -p), each new entry made
// durable by an fsync of the directory holding it.
inline void make_durable_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path q = p; !q.empty() && !fs::exists(q, ec); q = q.parent_path()) {
    missing.push_back(q);
    if (q == q.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST)
      throw bank_error("cannot create directory " + it->string() + ": " + std::strerror(errno));
    const std::string parent = it->parent_path().string();
    if (auto ec = ktm::io::posix_directory(parent).sync())
      throw bank_error("cannot sync directory " + parent + ": " + ec.message());
  }
  if (!fs::is_directory(p, ec)) throw bank_error("not a directory: " + dir);
}

}  // namespace detail

inline dir_lock::dir_lock(const std::string& dir) {
  const std::string p = dir + "/bank.lock";
  fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw bank_error("cannot open " + p + " at offset 0: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    fd = -1;
    throw bank_error("the bank in " + dir + " is in use by another process (" + p + " is locked)");
  }
}
inline dir_lock::~dir_lock() {
  if (fd >= 0) ::close(fd);
}

inline bank::bank(const std::string& dir) : bank(dir, read_meta(dir), false) {}

inline bank::bank(const std::string& dir, bank_meta m, bool create) : dir_(dir), meta_(std::move(m)), lock_(dir) {
  io_.emplace(dir_);
  auto lg = create ? log_type::create(*io_, "bank", log_options()) : log_type::open(*io_, "bank", log_options());
  if (!lg) throw bank_error("cannot " + std::string(create ? "create" : "open") + " the log in " + dir_ + ": " +
                            lg.error().message());
  lg_.emplace(std::move(*lg));
  auto stream = [&](const std::string& name) {
    auto s = create ? lg_->create_stream(name) : lg_->open_stream(name);
    detail::must(s, "stream " + name + " of the log in " + dir_);
    return std::move(*s);
  };
  // TM recovery first: replay the TM's stream (commit records without an end record).
  tm_backend backend(stream("tm"));
  if (!backend.usable()) throw bank_error("cannot take the writer of the TM's stream in " + dir_);
  tm_ = std::make_unique<tm_type>(ktm::tm::log_arg, std::move(backend), meta_.tm_id);
  detail::must(tm_->recover(), "TM recovery in " + dir_);

  // Then each RM, with its persisted id: its own recovery, then the TM's
  // (RECOVER + COMMIT for what the TM committed, LAST_RECOVER: the rest aborts).
  ktm::rm::transactional_map_options mo;
  mo.lock_timeout = std::chrono::milliseconds(200);
  mo.prepare = ktm::rm::durability::queue_only;  // the TM's forced commit record flushes it
  auto open_map = [&](const std::string& name, const ktm::guid& id, std::size_t checkpoint_every) {
    auto s = stream(name);
    auto w = s.marshalling_area();
    detail::must(w, "writer of stream " + name + " in " + dir_);
    auto o = mo;
    o.checkpoint_every = checkpoint_every;
    auto map = std::make_unique<map_type>(s, std::move(*w), o, id);
    auto rep = map->recover();
    detail::must(rep, "recovery of stream " + name + " in " + dir_);
    detail::must(tm_->add_resource_manager(*map), "registering stream " + name + " with the TM");
    detail::must(tm_->recover_resource_manager(*map), "TM recovery of stream " + name + " in " + dir_);
    for (const auto& t : map->in_doubt()) {  // what the TM did not redeliver: its recorded outcome
      const bool commit = tm_->recovered_outcome(t.uow) == ktm::tm::transaction_outcome::committed;
      auto r = map->resolve(t.uow, commit ? ktm::rm::outcome::commit : ktm::rm::outcome::abort);
      detail::must(r, "resolving transaction " + t.uow.to_string() + " of stream " + name + " in " + dir_);
    }
    if (rep->records_scanned > 2 * rep->snapshot_entries + 1000)
      detail::must(map->checkpoint(), "checkpoint of stream " + name + " in " + dir_);
    return map;
  };
  for (int i = 0; i < meta_.shards; ++i)
    shards_.push_back(open_map(detail::shard_stream(static_cast<std::size_t>(i)),
                               meta_.shard_ids[static_cast<std::size_t>(i)], 256));
  ledger_ = open_map("ledger", meta_.ledger_id, 0);  // checkpointed by maintenance(), scaled to its size
  ledger_size_ = ledger_->snapshot().size();
  // Every outcome above is logged; make it durable, then let the TM's stream go.
  detail::must(lg_->flush_all(), "flushing the log in " + dir_);
  detail::must(tm_->checkpoint(), "the TM's restart area in " + dir_);
}

inline bank::~bank() {
  tm_.reset();
  ledger_.reset();
  shards_.clear();
}

inline void bank::init(const std::string& dir, std::int64_t accounts, std::int64_t balance, int shards) {
  if (accounts < 2) throw bank_error("--accounts must be at least 2");
  if (balance < 0) throw bank_error("--balance must not be negative");
  if (shards < 1 || shards > 64) throw bank_error("--shards must be between 1 and 64");
  if (::access(bank_meta::path(dir).c_str(), F_OK) == 0)
    throw bank_error("a bank exists already: " + bank_meta::path(dir));
  detail::make_durable_directory(dir);
  bank_meta m;
  m.accounts = accounts;
  m.balance = balance;
  m.shards = shards;
  m.tm_id = ktm::guid::generate();
  for (int i = 0; i < shards; ++i) m.shard_ids.push_back(ktm::guid::generate());
  m.ledger_id = ktm::guid::generate();
  {
    bank b(dir, m, true);
    const std::string value = std::to_string(balance);
    for (std::int64_t first = 0; first < accounts; first += 512) {
      auto tx = b.tm_->begin();
      for (std::int64_t a = first; a < std::min(accounts, first + 512); ++a)
        detail::must(b.shard_of(a).put(tx, account_key(a), value), "creating account " + std::to_string(a));
      detail::must(tx.commit(), "committing the initial balances");
    }
    {
      auto tx = b.tm_->begin();
      detail::must(b.ledger_->put(tx, run_key, "0"), "creating the ledger");
      detail::must(tx.commit(), "committing the ledger");
    }
    for (auto& s : b.shards_) detail::must(s->checkpoint(), "checkpoint of a shard");
    detail::must(b.ledger_->checkpoint(), "checkpoint of the ledger");
    b.maintenance();
  }
  write_meta(dir, m);  // last: a crash before this leaves no bank, not half of one
}

inline std::uint64_t bank::begin_run() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto tx = tm_->begin();
    auto v = ledger_->get_for_update(tx, run_key);
    if (!v && detail::retryable(v.code())) continue;
    detail::must(v, "reading the run counter");
    const auto n = *v ? parse_int(**v) : std::nullopt;
    if (!n || *n < 0) throw bank_error("the ledger's run counter is damaged (stream ledger in " + dir_ + ")");
    detail::must(ledger_->put(tx, run_key, std::to_string(*n + 1)), "counting the run");
    auto c = tx.commit();
    if (!c && detail::retryable(c.code())) continue;
    detail::must(c, "committing the run counter");
    return static_cast<std::uint64_t>(*n + 1);
  }
  throw bank_error("cannot count the run: the ledger stays locked");
}

inline bank::status bank::transfer(std::uint64_t run, std::uint64_t seq, std::int64_t from, std::int64_t to,
                                   std::int64_t amount, std::string& txid) {
  char id[48];
  std::snprintf(id, sizeof id, "%06llu-%08llu", static_cast<unsigned long long>(run),
                static_cast<unsigned long long>(seq));
  const status st = [&] {
    auto tx = tm_->begin();
    // Locks in account order: no deadlock between two transfers.
    const std::int64_t order[2] = {std::min(from, to), std::max(from, to)};
    std::int64_t bal[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      const std::string k = account_key(order[i]);
      auto v = shard_of(order[i]).get_for_update(tx, k);
      if (!v && detail::retryable(v.code())) return status::conflict;
      detail::must(v, "reading account " + std::to_string(order[i]));
      const auto n = *v ? parse_int(**v) : std::nullopt;
      if (!n) throw bank_error("account " + std::to_string(order[i]) + " is missing or damaged in " + dir_);
      bal[i] = *n;
    }
    const std::int64_t from_bal = bal[from == order[0] ? 0 : 1], to_bal = bal[to == order[0] ? 0 : 1];
    if (from_bal < amount) {
      (void)tx.rollback();
      return status::insufficient;
    }
    auto put = [&](map_type& m, const std::string& k, const std::string& v) {
      auto r = m.put(tx, k, v);
      if (!r && detail::retryable(r.code())) return false;
      detail::must(r, "writing " + k);
      return true;
    };
    if (!put(shard_of(from), account_key(from), std::to_string(from_bal - amount)) ||
        !put(shard_of(to), account_key(to), std::to_string(to_bal + amount)) ||
        !put(*ledger_, id, std::to_string(from) + " " + std::to_string(to) + " " + std::to_string(amount)))
      return status::conflict;
    auto c = tx.commit();
    if (!c && detail::retryable(c.code())) return status::conflict;
    detail::must(c, "committing transfer " + std::string(id));
    return status::committed;
  }();
  if (st == status::committed) {
    txid = id;
    after_commit();
  }
  return st;
}

inline void bank::after_commit() {
  ++ledger_size_;
  ++ledger_since_checkpoint_;
  if (++commits_ % 1000 == 0) maintenance();
}

inline void bank::maintenance() {
  const std::uint64_t due = std::max<std::uint64_t>(2000, ledger_size_.load() / 2);
  if (ledger_since_checkpoint_.load() >= due) {
    ledger_since_checkpoint_ = 0;
    detail::must(ledger_->checkpoint(), "checkpoint of the ledger in " + dir_);
  }
  detail::must(tm_->checkpoint(), "the TM's restart area in " + dir_);
}

inline std::map<std::int64_t, std::int64_t> bank::balances() const {
  std::map<std::int64_t, std::int64_t> out;
  for (std::size_t i = 0; i < shards_.size(); ++i)
    for (const auto& [k, v] : shards_[i]->snapshot()) {
      auto a = parse_int(k);
      auto b = parse_int(v);
      if (!a || !b || *a < 0 || static_cast<std::size_t>(*a % meta_.shards) != i)
        throw bank_error("stream " + detail::shard_stream(i) + " in " + dir_ + " holds a damaged entry: " + k);
      out[*a] = *b;
    }
  return out;
}

inline std::vector<ledger_entry> bank::ledger() const {
  std::vector<ledger_entry> out;
  for (const auto& [k, v] : ledger_->snapshot()) {
    if (k == run_key) continue;
    ledger_entry e;
    e.txid = k;
    std::istringstream s(v);
    std::string f, t, a;
    s >> f >> t >> a;
    auto pf = parse_int(f), pt = parse_int(t), pa = parse_int(a);
    if (!pf || !pt || !pa) throw bank_error("stream ledger in " + dir_ + " holds a damaged entry: " + k);
    e.from = *pf, e.to = *pt, e.amount = *pa;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace bank
