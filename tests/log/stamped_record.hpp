// tests/log/stamped_record.hpp: payloads that say who wrote them, for the
// log's concurrency tests.
//
// stamped_payload({thread, seq, size}) is `size` bytes: a 12-byte header
// holding the thread id, its sequence number and the size, then a fill in
// which every 8-byte word depends on (thread, seq, its offset). read_stamp gives the
// stamp back only if every byte of the payload is the one written, so a
// record cut short, copied in part, copied to the wrong place or mixed with
// another does not pass for a whole one.
//
// stamped_size(thread, seq) mixes small records with records of 4 KiB and
// more (append_path.hpp: unlocked_copy_min), which the log copies into its
// open block after releasing its lock, and sizes at that threshold.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

namespace ktm::test {

struct stamp {
  std::uint32_t thread = 0;
  std::uint32_t seq = 0;
  std::uint32_t size = 0;  // the whole payload, header included
  bool operator==(const stamp&) const = default;
};

namespace stamped_detail {
inline constexpr std::size_t header = 12;
// The fill's 8-byte word number w (the header then overwrites bytes 0..11).
inline std::uint64_t word(const stamp& s, std::uint64_t w) {
  std::uint64_t x = (std::uint64_t{s.thread} << 48) ^ (std::uint64_t{s.seq} << 20) ^ w;
  x *= 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}
inline void put32(char* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline std::uint32_t get32(std::span<const std::byte> b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= std::uint32_t{std::to_integer<std::uint8_t>(b[at + i])} << (8 * i);
  return v;
}
// Writes the s.size bytes of s's payload at `out`.
inline void write(const stamp& s, char* out) {
  for (std::size_t k = 0; k < s.size; k += 8) {
    const std::uint64_t x = word(s, k / 8);
    std::memcpy(out + k, &x, std::min<std::size_t>(8, s.size - k));
  }
  put32(out, s.thread);
  put32(out + 4, s.seq);
  put32(out + 8, s.size);
}
}  // namespace stamped_detail

// About one record in four is large (4 KiB or more); the others are small.
inline std::uint32_t stamped_size(std::uint32_t thread, std::uint32_t seq) {
  static constexpr std::uint32_t large[] = {4095, 4096, 4097, 9000, 30000};
  const std::uint32_t h = (thread * 2654435761u) ^ (seq * 40503u) ^ (seq >> 3);
  if (h % 4 == 0) return large[(h / 4) % std::size(large)];
  return static_cast<std::uint32_t>(stamped_detail::header) + (h / 4) % 700;
}

inline std::string stamped_payload(const stamp& s) {
  std::string out(s.size, '\0');
  stamped_detail::write(s, out.data());
  return out;
}

inline std::string stamped_payload(std::uint32_t thread, std::uint32_t seq) {
  return stamped_payload({thread, seq, stamped_size(thread, seq)});
}

// The stamp of a whole payload written by stamped_payload; nullopt if any
// byte differs from what that stamp's payload holds.
inline std::optional<stamp> read_stamp(std::span<const std::byte> b) {
  if (b.size() < stamped_detail::header) return std::nullopt;
  const stamp s{stamped_detail::get32(b, 0), stamped_detail::get32(b, 4), stamped_detail::get32(b, 8)};
  if (s.size != b.size()) return std::nullopt;
  thread_local std::string expected;
  expected.resize(s.size);
  stamped_detail::write(s, expected.data());
  if (std::memcmp(expected.data(), b.data(), b.size()) != 0) return std::nullopt;
  return s;
}

}  // namespace ktm::test
