// ktm/log/detail/write_behind.hpp: the log's writer thread, which writes
// full blocks while appenders fill the next buffer (I/O policies that
// declare write_behind only).
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

// Write-behind. For I/O policies that declare `static constexpr bool
// write_behind = true` (posix_storage: a write is a copy into the page
// cache, as costly as encoding the block), a block sealed because it is
// full is written by a writer thread of the log, one block at a time, while
// appenders fill the next buffer; an appender waits only when every buffer
// is sealed and unwritten. The thread starts with the first full block, is
// one more I/O owner under the io_busy_ protocol (a forcer finding it busy
// waits for its one block, then leads), and stops when the log_core is
// destroyed. log_options::write_behind = false keeps it from starting.
// A failed write makes the log fail-stop like any other. Other policies
// (memory, fault injection: tests, fuzzing) keep writing in the caller's
// thread, deterministically.
template <class Io>
inline constexpr bool write_behind_v = requires { requires Io::write_behind; };

template <io_policy Io>
void log_core<Io>::wake_writer_locked() {
  if constexpr (write_behind_v<Io>) {
    if (writer_.joinable()) {
      if (!io_busy_) writer_cv_.notify_one();
      return;
    }
    if (writer_stop_ || failed_ || closed_ || !opt_.write_behind) return;
    try {
      writer_ = std::thread([this] { writer_loop(); });
    } catch (...) {
      writer_stop_ = true;  // no thread: write in the callers' threads as before
    }
  }
}

template <io_policy Io>
bool log_core<Io>::write_now_locked() const {
  if constexpr (write_behind_v<Io>)
    return (!opt_.write_behind || writer_stop_) && !writer_.joinable() && !io_busy_;  // no thread (or none could start)
  else
    return false;
}

template <io_policy Io>
void log_core<Io>::writer_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    writer_cv_.wait(lk, [&] { return writer_stop_ || (!failed_ && !io_busy_ && !pending_.empty()); });
    if (writer_stop_) return;
    (void)run_io_locked(lk, false, false, true, 1);  // a failure is fail-stop; callers see it
  }
}

template <io_policy Io>
void log_core<Io>::stop_writer() {
  {
    std::lock_guard lk(mu_);
    writer_stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

}  // namespace ktm::log::detail
