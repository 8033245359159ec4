// examples/demo.cpp: the README's first command.
//
// Writes records to a block device through an I/O policy, "crashes" by
// dropping the handle, opens the device again by name and reads the records
// back, then shows how a misuse is reported as a ktm error.
#include <array>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include "ktm/ktm.hpp"
#include "ktm/io/memory_device.hpp"

int main() {
  ktm::io::memory_storage storage;
  constexpr std::size_t record = 64;
  {
    auto dev = storage.open("demo.log", ktm::open_mode::create_new);
    if (!dev) return std::fprintf(stderr, "%s\n", dev.error().message().c_str()), 1;
    if (auto ec = dev->grow(4 * record)) return std::fprintf(stderr, "%s\n", ec.message().c_str()), 1;
    for (int i = 0; i < 4; ++i) {
      std::array<std::byte, record> buf{};
      auto text = "record " + std::to_string(i);
      std::memcpy(buf.data(), text.data(), text.size());
      if (auto ec = dev->write(i * record, buf)) return std::fprintf(stderr, "%s\n", ec.message().c_str()), 1;
    }
    if (auto ec = dev->flush()) return std::fprintf(stderr, "%s\n", ec.message().c_str()), 1;
    std::printf("wrote 4 records and flushed\n");
  }
  auto dev = storage.open("demo.log", ktm::open_mode::open_existing);
  if (!dev) return std::fprintf(stderr, "%s\n", dev.error().message().c_str()), 1;
  for (int i = 0; i < 4; ++i) {
    std::array<std::byte, record> buf{};
    if (auto ec = dev->read(i * record, buf)) return std::fprintf(stderr, "%s\n", ec.message().c_str()), 1;
    std::printf("read back: %s\n", reinterpret_cast<const char*>(buf.data()));
  }
  std::array<std::byte, record> buf{};
  auto ec = dev->read(4 * record, buf);
  std::printf("reading past the end: %s (%s:%d)\n", ec.message().c_str(), ec.category().name(), ec.value());
  return ec == ktm::errc::out_of_range ? 0 : 1;
}
