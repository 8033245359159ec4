// examples/superior_two_tms.cpp: two transaction managers in one process,
// one the superior of the other: a commit that spans both, printing every
// message between them and every notification to their RMs; then a
// subordinate's RM that refuses, which rolls back both; then a commit the
// subordinate's client asks for (COMMIT_REQUEST).
//
// Build: g++ -std=c++20 -I. examples/superior_two_tms.cpp -o /tmp/example -pthread
#include <cstdio>
#include <string>

#include "ktm/tm.hpp"

namespace kt = ktm::tm;

namespace {

const char* name(kt::superior_message_kind k) {
  using m = kt::superior_message_kind;
  switch (k) {
    case m::preprepare: return "PREPREPARE";
    case m::prepare: return "PREPARE";
    case m::commit: return "COMMIT";
    case m::rollback: return "ROLLBACK";
    case m::outcome: return "OUTCOME";
    case m::preprepare_complete: return "PREPREPARE_COMPLETE";
    case m::prepare_complete: return "PREPARE_COMPLETE";
    case m::commit_complete: return "COMMIT_COMPLETE";
    case m::rollback_complete: return "ROLLBACK_COMPLETE";
    case m::read_only: return "READ_ONLY";
    case m::aborted: return "ABORTED";
    case m::commit_request: return "COMMIT_REQUEST";
    case m::request_outcome: return "REQUEST_OUTCOME";
    case m::recover_query: return "RECOVER_QUERY";
  }
  return "?";
}

const char* name(kt::notify n) {
  switch (n) {
    case kt::notify::preprepare: return "PREPREPARE";
    case kt::notify::prepare: return "PREPARE";
    case kt::notify::commit: return "COMMIT";
    case kt::notify::rollback: return "ROLLBACK";
    default: return "?";
  }
}

// The in-process transport, printing each message it carries.
class printing_transport {
 public:
  template <class R>
  void attach(const ktm::guid& id, R& r) {
    bus_.attach(id, r);
  }
  void detach(const ktm::guid& id) { bus_.detach(id); }
  std::error_code send(const kt::superior_message& m) {
    std::printf("    %s -> %s  %s\n", who(m.from), who(m.to), name(m.kind));
    return bus_.send(m);
  }
  void label(const ktm::guid& id, const char* s) {
    if (first_ == ktm::guid{}) first_ = id, first_label_ = s;
    else second_label_ = s;
  }

 private:
  const char* who(const ktm::guid& id) const { return id == first_ ? first_label_ : second_label_; }
  kt::in_process_transport bus_;
  ktm::guid first_{};
  const char* first_label_ = "";
  const char* second_label_ = "";
};

// An RM that prints what it is told and may refuse to prepare.
class printing_rm : public kt::resource_manager_base<> {
 public:
  explicit printing_rm(const char* label) : label_(label) {}
  bool refuse = false;
  kt::reply on_preprepare(kt::enlistment&, const kt::notification& n) { return say(n); }
  kt::reply on_prepare(kt::enlistment&, const kt::notification& n) {
    say(n);
    return refuse ? kt::reply::rollback() : kt::reply::done();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification& n) { return say(n); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification& n) { return say(n); }

 private:
  kt::reply say(const kt::notification& n) {
    std::printf("    %s gets %s\n", label_, name(n.kind));
    return kt::reply::done();
  }
  const char* label_;
};

using tm_type = kt::superior_transaction_manager<kt::with_transport<printing_transport>>;

template <class Run>
void scenario(const char* title, tm_type& root, tm_type& leaf, printing_rm& a, printing_rm& b, Run run) {
  std::printf("%s\n", title);
  auto t = root.begin();
  auto s = leaf.begin(t.id());
  if (!kt::link_subordinate(root, t, leaf, s)) return;
  auto ea = t.enlist(a);
  auto eb = s.enlist(b);
  const ktm::result<void> r = run(t, s);
  std::printf("  -> %s\n\n", r ? "committed" : r.code().message().c_str());
}

}  // namespace

int main() {
  printing_transport bus;
  tm_type root{bus}, leaf{bus};
  bus.label(root.id(), "root");
  bus.label(leaf.id(), "leaf");
  printing_rm a("root's RM"), b("leaf's RM");
  if (!root.recover() || !leaf.recover() || !root.add_resource_manager(a) || !leaf.add_resource_manager(b)) return 1;

  scenario("1. the root commits a transaction that spans both TMs", root, leaf, a, b,
           [](auto& t, auto&) { return t.commit(); });

  b.refuse = true;
  scenario("2. the leaf's RM refuses: both roll back", root, leaf, a, b, [](auto& t, auto&) { return t.commit(); });
  b.refuse = false;

  scenario("3. the leaf's client commits: COMMIT_REQUEST, the root decides", root, leaf, a, b,
           [&](auto& t, auto& s) {
             root.on_commit_request([&](const ktm::guid&, const ktm::guid&) { (void)t.commit(); });
             auto r = s.commit();
             root.on_commit_request(nullptr);
             return r;
           });
  return 0;
}
