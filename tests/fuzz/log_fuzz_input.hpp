// tests/fuzz/log_fuzz_input.hpp: how log_fuzzer splits one input into the
// files of a log, shared by the fuzzer and the seed-corpus generator.
//
//   input     := header copy0 copy1 container* tape
//   header    := u8 flags | u8 containers (mod 7) | u16 container size in
//                512-byte units (clamped to 1..64) | u16 len0 | u16 len1
//   copy0/1   := len0 / len1 bytes: the start of base copy 0 / 1 (the rest of
//                each 65536-byte copy is zero)
//   container := u16 len | len bytes: the start of "f.c<i>" (the rest of the
//                file, up to the container size, is zero)
//   tape      := what is left: drives the operations (LSNs to read, payload)
//
// Everything is little-endian; a short input just leaves the rest zero.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/log/format.hpp"

namespace ktm::fuzz {

struct log_files {
  std::uint8_t flags = 0;
  std::vector<std::byte> base;                    // 2 * base_copy_size
  std::vector<std::vector<std::byte>> containers;  // f.c0, f.c1, ...
  std::vector<std::byte> tape;
};

class input_reader {
 public:
  explicit input_reader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint8_t u8() { return pos_ < in_.size() ? in_[pos_++] : 0; }
  std::uint16_t u16() {
    std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }
  // Copies up to n bytes into out (from its start); returns how many.
  std::size_t take(std::size_t n, std::span<std::byte> out) {
    const std::size_t k = std::min({n, in_.size() - pos_, out.size()});
    if (k) std::memcpy(out.data(), in_.data() + pos_, k);
    pos_ += std::min(n, in_.size() - pos_);
    return k;
  }
  std::span<const std::uint8_t> rest() const { return in_.subspan(pos_); }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

// Splits `in` into `f`, reusing f's buffers (the fuzzer calls it per input).
inline void split_input(std::span<const std::uint8_t> in, log_files& f) {
  input_reader r(in);
  f.flags = r.u8();
  const std::size_t n = r.u8() % 7;
  const std::size_t units = std::clamp<std::size_t>(r.u16(), 1, 64);
  const std::size_t len0 = r.u16(), len1 = r.u16();
  f.base.assign(2 * log::format::base_copy_size, std::byte{0});
  r.take(len0, std::span(f.base).first(log::format::base_copy_size));
  r.take(len1, std::span(f.base).subspan(log::format::base_copy_size));
  f.containers.resize(n);
  for (auto& c : f.containers) {
    c.assign(units * 512, std::byte{0});
    const std::size_t len = r.u16();
    r.take(len, c);
  }
  const auto rest = r.rest();
  f.tape.resize(rest.size());
  if (!rest.empty()) std::memcpy(f.tape.data(), rest.data(), rest.size());
}

inline log_files split_input(std::span<const std::uint8_t> in) {
  log_files f;
  split_input(in, f);
  return f;
}

// The trailing zeros of `b` cut off.
inline std::size_t used_prefix(std::span<const std::byte> b) {
  std::size_t n = b.size();
  while (n > 0 && b[n - 1] == std::byte{0}) --n;
  return n;
}

// The inverse of split_input for the files of a log named "f" in `s`.
inline std::vector<std::uint8_t> join_input(io::memory_storage& s, std::size_t containers,
                                            std::uint8_t flags, std::span<const std::uint8_t> tape) {
  std::vector<std::uint8_t> out;
  auto put16 = [&](std::size_t v) {
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
    out.push_back(static_cast<std::uint8_t>((v >> 8) & 0xff));
  };
  auto bytes = [&](const std::string& name) {
    auto d = s.open(name, open_mode::open_existing);
    return d ? d->shared_buffer()->bytes : std::vector<std::byte>{};
  };
  const auto base = bytes("f.blf");
  const std::span<const std::byte> c0 = std::span(base).first(log::format::base_copy_size);
  const std::span<const std::byte> c1 = std::span(base).subspan(log::format::base_copy_size);
  std::vector<std::vector<std::byte>> cs;
  std::size_t size = 0;
  for (std::size_t i = 0; i < containers; ++i) {
    cs.push_back(bytes("f.c" + std::to_string(i)));
    size = std::max(size, cs.back().size());
  }
  out.push_back(flags);
  out.push_back(static_cast<std::uint8_t>(containers));
  put16(size / 512);
  const std::size_t l0 = used_prefix(c0), l1 = used_prefix(c1);
  put16(l0);
  put16(l1);
  for (std::size_t i = 0; i < l0; ++i) out.push_back(static_cast<std::uint8_t>(c0[i]));
  for (std::size_t i = 0; i < l1; ++i) out.push_back(static_cast<std::uint8_t>(c1[i]));
  for (auto& c : cs) {
    const std::size_t l = used_prefix(c);
    put16(l);
    for (std::size_t i = 0; i < l; ++i) out.push_back(static_cast<std::uint8_t>(c[i]));
  }
  out.insert(out.end(), tape.begin(), tape.end());
  return out;
}

}  // namespace ktm::fuzz
