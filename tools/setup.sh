#!/usr/bin/env bash
# Installs what ktm's build needs from Debian's package archive.
# Idempotent: prints nothing and touches nothing when all is there.
set -euo pipefail

packages=(
  bazel-bootstrap     # Bazel 4.2.3
  bazel-rules-java    # rules_java for the offline WORKSPACE
  g++ clang-14 libclang-rt-14-dev  # compilers; clang's libFuzzer and sanitizers
  libboost1.81-dev    # Boost.Hana
  librange-v3-dev
  catch2              # Catch2 v2, catch2/catch.hpp
  libbenchmark-dev
  librocksdb-dev libdb5.3++-dev libsqlite3-dev  # peers in the benchmarks
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # //ktm/net/grpc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "ktm setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
