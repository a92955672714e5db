// Small helpers shared by the test files: bit-for-bit comparison, running a body with one and
// then two threads, and capturing a flexnn::Error's message.
#pragma once

#include "engine/error.hpp"
#include "kernels/cpu/parallel.hpp"

#include <cstring>
#include <string>
#include <vector>

namespace flexnn::testing {

inline bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs `body(threads)` with one thread, then with two, restoring the thread count afterwards.
template <typename F>
void with_one_then_two_threads(F body) {
  const int saved = cpu::num_threads();
  cpu::set_num_threads(1);
  body(1);
  cpu::set_num_threads(2);
  body(2);
  cpu::set_num_threads(saved);
}

// The message of the flexnn::Error that f throws, or a marker that none was thrown.
template <typename F>
std::string error_message(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no flexnn::Error thrown)";
}

}  // namespace flexnn::testing
