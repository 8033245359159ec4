// examples/demo.cpp: the README's first command.
//
// A multiplexed log on real files: two streams ("tm" and "rm") share one log
// and one device flush. The demo appends queued and forced records, writes a
// restart area, tears the log's tail as a crash would, opens the log again,
// and shows what survived and what the open reported.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"

namespace {

using log_type = ktm::log::log<ktm::io::posix_storage>;

template <class R>
auto must(R&& r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "demo: %s: %s\n", what, r.error().message().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

int main() {
  char tmpl[] = "/tmp/ktm-demo-XXXXXX";
  if (!::mkdtemp(tmpl)) return std::perror("mkdtemp"), 1;
  const std::string dir = tmpl;
  ktm::io::posix_storage io(dir);
  ktm::log::log_options opt;
  opt.container_size = 1 << 20;
  opt.persist_on_close = false;  // closing the handles below is a crash, not a shutdown

  std::printf("1. create a multiplexed log in %s with streams tm and rm\n", dir.c_str());
  {
    auto lg = must(log_type::create(io, "demo", opt), "create");
    auto tm = must(lg.create_stream("tm"), "create stream tm");
    auto rm = must(lg.create_stream("rm"), "create stream rm");
    auto tm_ma = must(tm.marshalling_area(), "tm marshalling area");
    auto rm_ma = must(rm.marshalling_area(), "rm marshalling area");

    must(rm_ma.append(std::string_view("rm: before-image of account 7 = 100")), "append");
    must(rm_ma.append(std::string_view("rm: after-image of account 7 = 60")), "append");
    auto flushes = lg.device_flushes();
    auto commit = must(tm_ma.append(std::string_view("tm: commit transaction 1"), ktm::log::record_type::data,
                                    ktm::log::append_flags::force),
                       "forced append");
    std::printf("   forced the commit record at LSN %s with %llu device flush(es): it covers both streams\n",
                commit.to_string().c_str(), static_cast<unsigned long long>(lg.device_flushes() - flushes));
    must(tm_ma.write_restart_area(std::as_bytes(std::span(std::string_view("tm restart: clock=2")))), "restart area");
    must(rm_ma.append(std::string_view("rm: queued, never forced")), "append");
    std::printf("2. queue one more rm record without forcing it, then crash\n");
  }

  std::printf("3. open the log again\n");
  ktm::log::log_options reopen;
  reopen.on_tail = [](const ktm::log::tail_report& r) {
    if (r.damaged)
      std::printf("   open cut a damaged tail: %s in %s at offset %llu (%llu bytes)\n",
                  ktm::make_error_code(r.reason).message().c_str(), r.file.c_str(),
                  static_cast<unsigned long long>(r.offset), static_cast<unsigned long long>(r.bytes_dropped));
    else
      std::printf("   open found a clean end of log\n");
  };
  auto lg = must(log_type::open(io, "demo", reopen), "open");
  for (auto name : {"tm", "rm"}) {
    auto st = must(lg.open_stream(name), "open stream");
    std::printf("   stream %s:\n", name);
    auto view = st.read_forward();
    for (const auto& rec : view)
      std::printf("     %-8s %s\n", rec.at.to_string().c_str(),
                  rec.type == ktm::log::record_type::restart ? "(restart area)" : text(rec.payload).c_str());
  }
  auto tm = must(lg.open_stream("tm"), "open stream tm");
  auto ra = must(tm.read_restart_area(), "read restart area");
  std::printf("   latest tm restart area at %s: %s\n", ra.at.to_string().c_str(), text(ra.data).c_str());

  std::printf("4. misuse is a ktm error, not a crash: ");
  auto missing = lg.open_stream("nope");
  std::printf("%s\n", missing ? "unexpected success" : missing.error().message().c_str());

  std::filesystem::remove_all(dir);
  return missing ? 1 : 0;
}
