// Errors from the CUDA backend's host code: the .cu files build their messages as plain strings and
// throw through this function (defined in error.cpp, compiled by the C++ compiler), which keeps
// nvcc away from fmt's compile-time format checks.
#pragma once

#include <string>

namespace flexnn::cuda {

// Throws flexnn::Error(message).
[[noreturn]] void raise_error(const std::string& message);

}  // namespace flexnn::cuda
