// tests/io/io_policy_laws.hpp: the io_policy laws, checked on any model.
//
// check_io_policy_laws(p) checks, on a policy in which the names "law-a",
// "law-b" and "law-c" do not exist:
//   open_existing of an absent name fails with not_found, create_new of a
//   present one with already_exists; open_or_create does either; a created
//   device is empty; two devices on one name see each other's writes and
//   size; rename moves the contents; remove deletes; both fail with
//   not_found on an absent name. (Durability of directory changes is a
//   model-specific check: see posix_file_test.cpp.)
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/error.hpp"
#include "ktm/io/aligned_buffer.hpp"
#include "tests/io/block_device_laws.hpp"

namespace ktm::test {

template <class P>
void check_io_policy_laws(P& p) {
  static_assert(ktm::io_policy<P>);
  REQUIRE_FALSE(p.exists("law-a"));
  REQUIRE_FALSE(p.exists("law-b"));
  REQUIRE_FALSE(p.exists("law-c"));

  CHECK(p.open("law-a", open_mode::open_existing).code() == errc::not_found);
  CHECK_FALSE(p.exists("law-a"));

  auto a = p.open("law-a", open_mode::create_new);
  REQUIRE(a);
  CHECK(a->size() == 0);
  CHECK(p.exists("law-a"));
  CHECK(p.open("law-a", open_mode::create_new).code() == errc::already_exists);

  // Two devices on one name see each other's writes.
  const std::size_t B = a->logical_block_size();
  io::aligned_buffer w(2 * B, B), r(2 * B, B);
  fill_pattern(w.span(), 7);
  {
    auto a2 = p.open("law-a", open_mode::open_or_create);
    REQUIRE(a2);
    REQUIRE_FALSE(a->grow(2 * B));
    CHECK(a2->size() == 2 * B);
    REQUIRE_FALSE(a2->write(0, w.span()));
    REQUIRE_FALSE(a2->flush());
    REQUIRE_FALSE(a->read(0, r.span()));
    CHECK(std::equal(w.span().begin(), w.span().end(), r.span().begin()));
  }

  auto b = p.open("law-b", open_mode::open_or_create);
  REQUIRE(b);
  CHECK(b->size() == 0);
  CHECK(p.exists("law-b"));

  // rename moves the contents to the new name.
  CHECK_FALSE(p.rename("law-a", "law-c"));
  CHECK_FALSE(p.exists("law-a"));
  CHECK(p.exists("law-c"));
  {
    auto c = p.open("law-c", open_mode::open_existing);
    REQUIRE(c);
    REQUIRE(c->size() == 2 * B);
    io::aligned_buffer r2(2 * B, B);
    REQUIRE_FALSE(c->read(0, r2.span()));
    CHECK(std::equal(w.span().begin(), w.span().end(), r2.span().begin()));
  }
  CHECK(p.rename("law-a", "law-c") == errc::not_found);

  // remove deletes the name.
  CHECK_FALSE(p.remove("law-c"));
  CHECK_FALSE(p.exists("law-c"));
  CHECK(p.remove("law-c") == errc::not_found);
  CHECK(p.open("law-c", open_mode::open_existing).code() == errc::not_found);
  CHECK_FALSE(p.remove("law-b"));
  CHECK_FALSE(p.exists("law-b"));
}

}  // namespace ktm::test
