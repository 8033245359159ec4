// tests/support/counting_storage.hpp: the I/O policy that counts device
// flushes, for tests: benchmarks/support/counting_storage.hpp, the one the
// benchmarks report flushes per commit with, shared (ktm::test::
// counting_storage<Inner>). It counts every flush on every file of the logs
// it holds (containers, base file, containers a log creates as it grows),
// and can delay each flush or run a hook before it.
#pragma once

#include "benchmarks/support/counting_storage.hpp"

namespace ktm::test {

using ktm::bench::counting_storage;

}  // namespace ktm::test
