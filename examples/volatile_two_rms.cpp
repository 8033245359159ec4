// examples/volatile_two_rms.cpp: a volatile TM with two resource managers,
// commits and rollbacks (one through a static transaction), printing every
// notification.
//
// Build: g++ -std=c++20 -I. examples/volatile_two_rms.cpp -o /tmp/example -pthread
#include <cstdio>
#include <map>
#include <string>

#include "ktm/tm.hpp"

namespace kt = ktm::tm;

namespace {

const char* name(kt::notify n) {
  switch (n) {
    case kt::notify::preprepare: return "PREPREPARE";
    case kt::notify::prepare: return "PREPARE";
    case kt::notify::commit: return "COMMIT";
    case kt::notify::rollback: return "ROLLBACK";
    case kt::notify::tm_online: return "TM_ONLINE";
    default: return "?";
  }
}

// A tiny volatile key-value store: the client writes into a pending map;
// COMMIT makes the writes visible, ROLLBACK forgets them.
class kv_store : public kt::resource_manager_base<> {
 public:
  explicit kv_store(const char* label) : label_(label) {}

  void put(const kt::enlistment& e, const std::string& k, const std::string& v) {
    pending_[e.key().value()][k] = v;
  }

  kt::reply on_preprepare(kt::enlistment& e, const kt::notification& n) { return log(e, n); }
  kt::reply on_prepare(kt::enlistment& e, const kt::notification& n) {
    // Refuse a transaction that writes an empty value.
    for (const auto& [k, v] : pending_[e.key().value()])
      if (v.empty()) {
        std::printf("  %-6s %-10s -> rollback (empty value for %s)\n", label_, name(n.kind), k.c_str());
        pending_.erase(e.key().value());  // it gets no ROLLBACK: it rolled back itself
        return kt::reply::rollback();
      }
    return log(e, n);
  }
  kt::reply on_commit(kt::enlistment& e, const kt::notification& n) {
    for (const auto& [k, v] : pending_[e.key().value()]) data_[k] = v;
    pending_.erase(e.key().value());
    return log(e, n);
  }
  kt::reply on_rollback(kt::enlistment& e, const kt::notification& n) {
    pending_.erase(e.key().value());
    return log(e, n);
  }
  void on_tm_online(const kt::notification& n) { std::printf("  %-6s %s\n", label_, name(n.kind)); }

  std::size_t size() const { return data_.size(); }

 private:
  kt::reply log(kt::enlistment&, const kt::notification& n) {
    std::printf("  %-6s %-10s tx %.8s clock %llu -> done\n", label_, name(n.kind), n.transaction.to_string().c_str(),
                static_cast<unsigned long long>(n.virtual_clock));
    return kt::reply::done();
  }

  const char* label_;
  std::map<std::uint64_t, std::map<std::string, std::string>> pending_;
  std::map<std::string, std::string> data_;
};

struct accounts : kv_store {
  accounts() : kv_store("accts") {}
};
struct audit : kv_store {
  audit() : kv_store("audit") {}
};

using tm_type = kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<accounts, audit>>,
                                                 kt::with_dispatcher<kt::inline_dispatcher>>;

}  // namespace

int main() {
  accounts acc;
  audit aud;
  tm_type tm{acc, aud};
  std::printf("recover:\n");
  (void)tm.recover();

  std::printf("transaction 1 (commit):\n");
  {
    auto tx = tm.begin();
    (void)tx.set_description("move 10 from alice to bob");
    auto ea = tx.enlist(acc, kt::default_mask, kt::enlistment_key(1)).value();
    auto eb = tx.enlist(aud, kt::default_mask, kt::enlistment_key(1)).value();
    acc.put(*ea, "alice", "90");
    acc.put(*ea, "bob", "110");
    aud.put(*eb, "entry-1", "alice->bob 10");
    const auto r = tx.commit();
    std::printf("  result: %s, outcome %s\n", r ? "committed" : r.error().message().c_str(),
                tx.outcome() == kt::transaction_outcome::committed ? "committed" : "aborted");
  }

  std::printf("transaction 2 (an RM rolls back in PREPARE):\n");
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(acc, kt::default_mask, kt::enlistment_key(2)).value();
    auto eb = tx.enlist(aud, kt::default_mask, kt::enlistment_key(2)).value();
    acc.put(*ea, "carol", "");
    aud.put(*eb, "entry-2", "carol opened");
    const auto r = tx.commit();
    std::printf("  result: %s\n", r ? "committed" : r.error().message().c_str());
  }

  std::printf("transaction 3 (client rollback):\n");
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(acc, kt::default_mask, kt::enlistment_key(3)).value();
    acc.put(*ea, "dave", "5");
    (void)tx.rollback();
    std::printf("  result: rolled back\n");
  }

  std::printf("transaction 4 (a static transaction: no handles, replies by return):\n");
  {
    auto tx = tm.begin_static();
    (void)tx.enlist(acc, kt::default_mask, kt::enlistment_key(4));
    (void)tx.enlist(aud, kt::default_mask, kt::enlistment_key(4));
    acc.put(*tx.enlistment_of(acc), "erin", "7");
    aud.put(*tx.enlistment_of(aud), "entry-4", "erin opened");
    const auto r = tx.commit();
    std::printf("  result: %s\n", r ? "committed" : r.error().message().c_str());
  }
  std::printf("accounts holds %zu keys, audit %zu; TM virtual clock %llu\n", acc.size(), aud.size(),
              static_cast<unsigned long long>(tm.virtual_clock()));
  return 0;
}
