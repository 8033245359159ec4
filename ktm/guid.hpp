// ktm/guid.hpp: a 128-bit globally unique identifier.
//
// Identifies transaction managers, resource managers and transactions (the
// unit-of-work id). Sixteen bytes, compared bytewise; the text form is the
// usual 8-4-4-4-12 lower-case hex ("1b4e28ba-2fa1-11d2-883f-0016d3cca427").
//
// guid::generate() returns a random (version 4, RFC 4122 variant) id drawn
// from a per-thread engine seeded once from std::random_device, so that
// generating an id takes no lock and no heap allocation.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ktm {

class guid {
 public:
  using bytes_type = std::array<std::uint8_t, 16>;

  constexpr guid() noexcept = default;  // the nil guid: all zero
  constexpr explicit guid(const bytes_type& b) noexcept : bytes_(b) {}

  // A random version-4 guid. Thread-safe; no allocation after the first
  // call on a thread.
  static guid generate() noexcept {
    thread_local std::mt19937_64 engine = [] {
      std::random_device rd;
      std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
      return std::mt19937_64(seq);
    }();
    const std::uint64_t hi = engine();
    const std::uint64_t lo = engine();
    return from_random_bits(hi, lo);
  }

  // The version-4 id made of 128 random bits: hi's bytes (least significant
  // first) are bytes 0-7, lo's are 8-15, then the version (4, byte 6's high
  // nibble) and the RFC 4122 variant (binary 10, byte 8's top bits) are set.
  static guid from_random_bits(std::uint64_t hi, std::uint64_t lo) noexcept {
#if defined(__SSE2__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // The 16 bytes in one store: a later 16-byte copy of the id (a
    // transaction's, into each notification) then reads them from that
    // store, where two 8-byte stores make it wait until both have reached
    // the cache (a store-forwarding stall of some 15 cycles).
    const std::uint64_t h = (hi & ~(std::uint64_t{0xf0} << 48)) | (std::uint64_t{0x40} << 48);  // byte 6
    const std::uint64_t l = (lo & ~std::uint64_t{0xc0}) | std::uint64_t{0x80};                  // byte 8
    guid g;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(g.bytes_.data()),
                     _mm_set_epi64x(static_cast<long long>(l), static_cast<long long>(h)));
    return g;
#else
    bytes_type b;
    for (std::size_t i = 0; i < 8; ++i) {
      b[i] = static_cast<std::uint8_t>(hi >> (8 * i));
      b[8 + i] = static_cast<std::uint8_t>(lo >> (8 * i));
    }
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return guid(b);
#endif
  }

  // Parses the 36-character 8-4-4-4-12 form (either case). nullopt otherwise.
  static std::optional<guid> from_string(std::string_view s) noexcept {
    if (s.size() != 36) return std::nullopt;
    bytes_type b{};
    std::size_t byte = 0;
    for (std::size_t i = 0; i < 36;) {
      if (i == 8 || i == 13 || i == 18 || i == 23) {
        if (s[i] != '-') return std::nullopt;
        ++i;
        continue;
      }
      const int h = hex_value(s[i]), l = hex_value(s[i + 1]);
      if (h < 0 || l < 0) return std::nullopt;
      b[byte++] = static_cast<std::uint8_t>(h * 16 + l);
      i += 2;
    }
    return guid(b);
  }

  std::string to_string() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
      s.push_back(digits[bytes_[i] >> 4]);
      s.push_back(digits[bytes_[i] & 0xf]);
    }
    return s;
  }

  constexpr const bytes_type& bytes() const noexcept { return bytes_; }
  constexpr bool is_nil() const noexcept { return *this == guid{}; }

  friend constexpr bool operator==(const guid&, const guid&) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(const guid&, const guid&) noexcept = default;

 private:
  static constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bytes_type bytes_{};
};

}  // namespace ktm

template <>
struct std::hash<ktm::guid> {
  std::size_t operator()(const ktm::guid& g) const noexcept {
    std::uint64_t a, b;
    std::memcpy(&a, g.bytes().data(), 8);
    std::memcpy(&b, g.bytes().data() + 8, 8);
    return static_cast<std::size_t>(a ^ (b * 0x9e3779b97f4a7c15ull));
  }
};
