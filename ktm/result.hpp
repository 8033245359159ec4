// ktm/result.hpp: a value or a failure.
//
// `failure` is an error code plus where it happened: a byte offset in a named
// file, or an LSN. Corrupt on-disk data is always reported with its position
// so that an operator can find it. `result<T>` holds a T or a failure; it is
// the return type of every fallible call above the block devices.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include "ktm/error.hpp"

namespace ktm {

// Where a failure happened. `kind` says how to read `value`.
struct position {
  enum class kind : std::uint8_t { none, offset, lsn };
  kind what = kind::none;
  std::uint64_t value = 0;

  static position none() noexcept { return {}; }
  static position at_offset(std::uint64_t o) noexcept { return {kind::offset, o}; }
  static position at_lsn(std::uint64_t l) noexcept { return {kind::lsn, l}; }
};

struct failure {
  std::error_code code;
  position where{};
  std::string file{};  // the file (base file, container) the position is in

  failure() = default;
  failure(std::error_code c, position p = {}, std::string f = {})
      : code(c), where(p), file(std::move(f)) {}
  failure(errc e, position p = {}, std::string f = {})
      : code(make_error_code(e)), where(p), file(std::move(f)) {}

  // One line for humans: "log record is corrupt (ktm:22) in c1.ktmc at offset 4096".
  std::string message() const {
    std::string m = code.message() + " (" + code.category().name() + ":" +
                    std::to_string(code.value()) + ")";
    if (!file.empty()) m += " in " + file;
    switch (where.what) {
      case position::kind::offset: m += " at offset " + std::to_string(where.value); break;
      case position::kind::lsn: m += " at LSN " + to_hex(where.value); break;
      case position::kind::none: break;
    }
    return m;
  }

 private:
  static std::string to_hex(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s = "0x0000000000000000";
    for (int i = 17; i >= 2; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xf];
    return s;
  }
};

// A T or a failure. Accessing the wrong alternative is a contract violation.
template <class T>
class [[nodiscard]] result {
 public:
  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  result(failure f) : v_(std::in_place_index<1>, std::move(f)) {}
  result(errc e, position p = {}) : v_(std::in_place_index<1>, failure(e, p)) {}
  result(std::error_code c) : v_(std::in_place_index<1>, failure(c)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const failure& error() const& { return std::get<1>(v_); }
  failure&& error() && { return std::get<1>(std::move(v_)); }
  std::error_code code() const noexcept {
    return has_value() ? std::error_code{} : std::get<1>(v_).code;
  }

 private:
  std::variant<T, failure> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(failure f) : f_(std::move(f)), ok_(false) {}
  result(errc e, position p = {}) : f_(e, p), ok_(false) {}
  // An empty error_code is success, so `return dev.flush();` works.
  result(std::error_code c) : f_(c), ok_(!c) {}

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const failure& error() const& { return f_; }
  failure&& error() && { return std::move(f_); }
  std::error_code code() const noexcept { return ok_ ? std::error_code{} : f_.code; }

 private:
  failure f_{};
  bool ok_ = true;
};

}  // namespace ktm

// Propagates a failure out of a function returning a result<...>.
// `expr` must be a result<...>; for a std::error_code use KTM_TRY_EC.
#define KTM_TRY(expr)                                        \
  do {                                                       \
    auto&& ktm_try_r_ = (expr);                              \
    if (!ktm_try_r_) return std::move(ktm_try_r_).error();   \
  } while (0)

// Propagates a non-empty std::error_code, attaching a position.
#define KTM_TRY_EC(expr, pos)                                        \
  do {                                                               \
    std::error_code ktm_try_ec_ = (expr);                            \
    if (ktm_try_ec_) return ::ktm::failure(ktm_try_ec_, (pos));      \
  } while (0)
