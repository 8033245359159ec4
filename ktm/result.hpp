// ktm/result.hpp: a value or a failure.
//
// `failure` is an error code plus where it happened: a byte offset in a named
// file, or an LSN. Corrupt on-disk data is always reported with its position
// so that an operator can find it. `result<T>` holds a T or a failure; it is
// the return type of every fallible call above the block devices.
#pragma once

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <system_error>
#include <utility>

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

// Thrown by result<T>::value() (and *, ->) on a failure, and by
// result<T>::error() on a success: a misuse of the API, never an I/O error.
class bad_result_access : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {
[[noreturn]] [[gnu::cold]] [[gnu::noinline]] inline void throw_bad_result_access(const char* what) {
  throw bad_result_access(what);
}
}  // namespace detail

// A T or a failure. Accessing the wrong alternative throws
// bad_result_access. The success path never builds a failure: the two
// share storage, and only the one held is constructed and destroyed.
template <class T>
class [[nodiscard]] result {
 public:
  result(T v) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(true) { ::new (&v_) T(std::move(v)); }
  result(failure f) noexcept : ok_(false) { ::new (&f_) failure(std::move(f)); }
  result(errc e, position p = {}) : ok_(false) { ::new (&f_) failure(e, p); }
  result(std::error_code c) noexcept : ok_(false) { ::new (&f_) failure(c); }

  result(const result& o) requires std::is_copy_constructible_v<T> { construct_from(o); }
  result(result&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
    requires std::is_move_constructible_v<T> {
    construct_from(std::move(o));
  }
  result& operator=(const result& o) requires std::is_copy_constructible_v<T> {
    if (this != &o) {
      destroy();
      construct_from(o);
    }
    return *this;
  }
  result& operator=(result&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
    requires std::is_move_constructible_v<T> {
    if (this != &o) {
      destroy();
      construct_from(std::move(o));
    }
    return *this;
  }
  ~result() { destroy(); }

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }

  T& value() & { return check_value(), v_; }
  const T& value() const& { return check_value(), v_; }
  T&& value() && { return check_value(), std::move(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const failure& error() const& { return check_error(), f_; }
  failure&& error() && { return check_error(), std::move(f_); }
  std::error_code code() const noexcept { return ok_ ? std::error_code{} : f_.code; }

 private:
  void check_value() const {
    if (!ok_) [[unlikely]]
      detail::throw_bad_result_access("ktm::result: value() of a failure");
  }
  void check_error() const {
    if (ok_) [[unlikely]]
      detail::throw_bad_result_access("ktm::result: error() of a success");
  }
  // Copies (R = const result&) or moves (R = result) what o holds.
  template <class R>
  void construct_from(R&& o) {
    ok_ = o.ok_;
    if (ok_) ::new (&v_) T(std::forward<R>(o).v_);
    else ::new (&f_) failure(std::forward<R>(o).f_);
  }
  void destroy() noexcept {
    if (ok_) v_.~T();
    else f_.~failure();
  }

  union {
    T v_;
    failure f_;
  };
  bool ok_;
};

// Success or a failure. Success holds no failure (none is built); error()
// on a success reads as a failure with an empty code, as it always did.
template <>
class [[nodiscard]] result<void> {
 public:
  result() noexcept {}
  result(failure f) noexcept : ok_(false), has_f_(true) { ::new (&f_) failure(std::move(f)); }
  result(errc e, position p = {}) : ok_(false), has_f_(true) { ::new (&f_) failure(e, p); }
  // An empty error_code is success, so `return dev.flush();` works.
  result(std::error_code c) noexcept : ok_(!c), has_f_(!!c) {
    if (c) ::new (&f_) failure(c);
  }

  result(const result& o) { construct_from(o); }
  result(result&& o) noexcept { construct_from(std::move(o)); }
  result& operator=(const result& o) {
    if (this != &o) {
      destroy();
      construct_from(o);
    }
    return *this;
  }
  result& operator=(result&& o) noexcept {
    if (this != &o) {
      destroy();
      construct_from(std::move(o));
    }
    return *this;
  }
  ~result() { destroy(); }

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const failure& error() const& { return has_f_ ? f_ : no_failure(); }
  failure&& error() && {
    if (!has_f_) {
      ::new (&f_) failure();
      has_f_ = true;
    }
    return std::move(f_);
  }
  std::error_code code() const noexcept { return ok_ ? std::error_code{} : f_.code; }

 private:
  static const failure& no_failure() noexcept {
    static const failure none{};
    return none;
  }
  // Copies (R = const result&) or moves (R = result) what o holds.
  template <class R>
  void construct_from(R&& o) {
    ok_ = o.ok_;
    has_f_ = o.has_f_;
    if (has_f_) ::new (&f_) failure(std::forward<R>(o).f_);
  }
  void destroy() noexcept {
    if (has_f_) f_.~failure();
    has_f_ = false;
  }

  union {
    failure f_;
  };
  bool ok_ = true;
  bool has_f_ = false;  // f_ is alive
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
