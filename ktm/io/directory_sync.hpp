// ktm/io/directory_sync.hpp: sync_directory(policy), the optional directory
// fsync of an I/O policy.
//
// The io_policy laws make create, rename and remove durable on return (a file
// policy fsyncs the parent directory in each call). A policy may instead
// declare `std::error_code sync_directory()`, making those operations durable
// only once it returns (fault_injection_storage models such a file system).
// Code that is about to rely on a directory change being durable (e.g. a log
// about to record a new container file in its base file) calls
// sync_directory(p): it forwards to the policy's member if there is one, and
// is a no-op success otherwise.
#pragma once

#include <concepts>
#include <system_error>

namespace ktm::io {

template <class P>
std::error_code sync_directory(P& p) {
  if constexpr (requires {
                  { p.sync_directory() } -> std::same_as<std::error_code>;
                })
    return p.sync_directory();
  else
    return {};
}

}  // namespace ktm::io
