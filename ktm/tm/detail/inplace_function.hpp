// ktm/tm/detail/inplace_function.hpp: a move-only callable stored inline.
//
// Holds any callable of at most Size bytes without a heap allocation; used
// for completion callbacks so that an asynchronous commit allocates nothing
// the caller did not ask for. Larger callables are rejected at compile time.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace ktm::tm::detail {

template <class Signature, std::size_t Size = 48>
class inplace_function;

template <class R, class... Args, std::size_t Size>
class inplace_function<R(Args...), Size> {
 public:
  inplace_function() noexcept = default;

  template <class F, class D = std::decay_t<F>>
    requires(!std::is_same_v<D, inplace_function> && std::is_invocable_r_v<R, D&, Args...>)
  inplace_function(F&& f) {  // NOLINT: implicit on purpose, like std::function
    static_assert(sizeof(D) <= Size, "inplace_function: the callable is too large; capture less");
    static_assert(alignof(D) <= alignof(std::max_align_t), "inplace_function: over-aligned callable");
    ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
    call_ = [](void* p, Args... a) -> R { return (*static_cast<D*>(p))(std::forward<Args>(a)...); };
    manage_ = [](void* dst, void* src) noexcept {
      if (dst) ::new (dst) D(std::move(*static_cast<D*>(src)));
      static_cast<D*>(src)->~D();
    };
  }

  inplace_function(inplace_function&& o) noexcept { take(o); }
  inplace_function& operator=(inplace_function&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  inplace_function(const inplace_function&) = delete;
  inplace_function& operator=(const inplace_function&) = delete;
  ~inplace_function() { reset(); }

  explicit operator bool() const noexcept { return call_ != nullptr; }
  R operator()(Args... a) { return call_(buf_, std::forward<Args>(a)...); }

  void reset() noexcept {
    if (manage_) manage_(nullptr, buf_);
    call_ = nullptr;
    manage_ = nullptr;
  }

 private:
  void take(inplace_function& o) noexcept {
    if (o.manage_) o.manage_(buf_, o.buf_);
    call_ = o.call_;
    manage_ = o.manage_;
    o.call_ = nullptr;
    o.manage_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char buf_[Size];
  R (*call_)(void*, Args...) = nullptr;
  void (*manage_)(void*, void*) noexcept = nullptr;
};

}  // namespace ktm::tm::detail
