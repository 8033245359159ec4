// tests/fuzz/standalone_driver.cpp: runs a libFuzzer entry point without
// libFuzzer, as a regression test.
//
// Feeds LLVMFuzzerTestOneInput every file of the directories or files named
// on the command line, then KTM_FUZZ_RANDOM_INPUTS (default 2000) inputs from
// a seeded generator: random bytes, and mutations (bit flips, truncations,
// overwritten runs) of the corpus files. Prints "All tests passed (1 assertion
// in 1 test case)" at the end so CI counts it as one test case; any crash or
// sanitizer report fails the test.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::uint8_t> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const std::vector<std::uint8_t>& v) { LLVMFuzzerTestOneInput(v.data(), v.size()); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::vector<std::uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) corpus.push_back(slurp(e.path()));
    } else if (std::filesystem::is_regular_file(p)) {
      corpus.push_back(slurp(p));
    }
  }
  for (auto& c : corpus) run(c);

  long n = 2000;
  if (const char* s = std::getenv("KTM_FUZZ_RANDOM_INPUTS")) n = std::strtol(s, nullptr, 10);
  std::mt19937_64 rng(0x6b746d);  // fixed seed: a failure replays exactly
  for (long i = 0; i < n; ++i) {
    std::vector<std::uint8_t> v;
    if (!corpus.empty() && i % 4 != 0) {
      v = corpus[rng() % corpus.size()];
      int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && !v.empty(); ++e) {
        std::size_t at = rng() % v.size();
        switch (rng() % 3) {
          case 0: v[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
          case 1: v.resize(at); break;
          default:
            for (std::size_t k = at; k < v.size() && k < at + 1 + rng() % 16; ++k)
              v[k] = static_cast<std::uint8_t>(rng());
        }
      }
    } else {
      v.resize(rng() % 4096);
      for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    }
    run(v);
  }
  std::printf("ran %zu corpus inputs and %ld generated inputs\n", corpus.size(), n);
  std::printf("All tests passed (1 assertion in 1 test case)\n");
  return 0;
}
