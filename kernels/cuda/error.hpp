// Errors from the CUDA backend's host code. The .cu files are compiled by nvcc, whose front end
// cannot parse fmt's compile-time format strings, so they build messages as plain strings and
// throw through this function (defined in error.cpp, compiled by the C++ compiler).
#pragma once

#include <string>

namespace flexnn::cuda {

// Throws flexnn::Error(message).
[[noreturn]] void raise_error(const std::string& message);

}  // namespace flexnn::cuda
