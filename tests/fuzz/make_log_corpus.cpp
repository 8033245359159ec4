// tests/fuzz/make_log_corpus.cpp: writes the seed corpus of log_fuzzer.
//
//   bazel run //tests/fuzz:make_log_corpus -- $PWD/tests/fuzz/corpus/log_fuzzer
//
// Each seed is a small valid log (io_align 512, blocks of 1024, containers of
// 3 or 4 KiB) written by a short workload, in the input format of
// tests/fuzz/log_fuzz_input.hpp.
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "tests/fuzz/log_fuzz_input.hpp"

namespace {

using ktm::io::memory_storage;
using namespace ktm::log;
using mlog = ktm::log::log<memory_storage>;

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

log_options geometry(std::uint32_t container_size, std::uint32_t containers) {
  log_options o;
  o.block_size = 1024;
  o.container_size = container_size;
  o.containers = containers;
  o.io_align = 512;
  o.write_buffers = 2;
  o.max_containers = 6;
  return o;
}

void write(const std::string& dir, const std::string& name, memory_storage& s, std::size_t containers,
           std::uint8_t flags, std::vector<std::uint8_t> tape) {
  auto in = ktm::fuzz::join_input(s, containers, flags, tape);
  std::ofstream(dir + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(in.data()),
                                                           static_cast<std::streamsize>(in.size()));
  std::printf("%s: %zu bytes\n", name.c_str(), in.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_log_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<std::uint8_t> tape{8, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0, 0};

  {  // an empty multiplexed log
    memory_storage s;
    { auto lg = mlog::create(s, "f", geometry(4096, 2)); }
    write(dir, "empty", s, 2, 1, tape);
  }
  {  // two streams, forced and queued records, closed cleanly
    memory_storage s;
    {
      auto lg = mlog::create(s, "f", geometry(4096, 2));
      auto a = lg->create_stream("tm");
      auto b = lg->create_stream("rm");
      auto ma = a->marshalling_area();
      auto mb = b->marshalling_area();
      auto l0 = ma->append(bytes("begin"));
      auto l1 = mb->append(bytes("undo"));
      (void)ma->append(bytes("commit"), record_type::data, append_flags::force, *l0);
      (void)mb->append(bytes("clr"), record_type::data, append_flags::none, *l1);
      (void)mb->flush_all();
    }
    write(dir, "two_streams_closed", s, 2, 0, tape);
  }
  {  // restart areas and an undo-next chain; a crash image (base file behind)
    memory_storage s;
    {
      auto o = geometry(4096, 2);
      o.persist_on_close = false;
      auto lg = mlog::create(s, "f", o);
      auto a = lg->create_stream("a");
      auto ma = a->marshalling_area();
      auto l0 = ma->append(bytes("r0"));
      auto l1 = ma->append(bytes("r1"), record_type::data, append_flags::force, *l0);
      (void)ma->write_restart_area(bytes("ra1"));
      (void)ma->append(bytes("r2"), record_type::data, append_flags::force, *l1);
      (void)ma->write_restart_area(bytes("ra2"), *l1);
    }
    write(dir, "restart_chain_crash", s, 2, 4 | 1, tape);
  }
  {  // a log that wrapped over its containers (advance_base), three containers
    memory_storage s;
    {
      auto o = geometry(3072, 3);
      o.persist_on_close = false;
      auto lg = mlog::create(s, "f", o);
      auto a = lg->create_stream("w");
      auto ma = a->marshalling_area();
      for (int i = 0; i < 14; ++i) {
        auto l = ma->append(bytes(std::string(200 + i * 20, static_cast<char>('a' + i))), record_type::data,
                            append_flags::force);
        if (l && i % 3 == 2) (void)a->advance_base(*l);
      }
    }
    write(dir, "wrapped_three_containers", s, 3, 8 | 4, tape);
  }
  {  // a dedicated log, reopened once (epoch 2), then a torn tail
    memory_storage s;
    {
      auto o = geometry(4096, 2);
      o.dedicated = true;
      { auto lg = mlog::create(s, "f", o); }
      o.persist_on_close = false;
      auto lg = mlog::open(s, "f", o);
      auto d = lg->default_stream();
      auto ma = d->marshalling_area();
      (void)ma->append(bytes("one"), record_type::data, append_flags::force);
      (void)ma->append(bytes(std::string(700, 'T')), record_type::data, append_flags::force);
    }
    // tear the second sector of the last block
    auto c0 = s.open("f.c0", ktm::open_mode::open_existing);
    auto& b = c0->shared_buffer()->bytes;
    for (std::size_t i = 1536; i < 2048; ++i) b[i] = std::byte{0};
    write(dir, "dedicated_torn_tail", s, 2, 2 | 16, tape);
  }
  {  // a grown log: four containers, client record types
    memory_storage s;
    {
      auto o = geometry(3072, 2);
      o.grow = true;
      o.max_containers = 4;
      auto lg = mlog::create(s, "f", o);
      auto a = lg->create_stream("g");
      auto ma = a->marshalling_area();
      for (int i = 0; i < 12; ++i)
        (void)ma->append(bytes(std::string(300, static_cast<char>('A' + i))), static_cast<record_type>(16 + i),
                         append_flags::force);
    }
    write(dir, "grown_four_containers", s, 4, 2 | 1, tape);
  }
  return 0;
}
