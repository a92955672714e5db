// Input checks shared by the op implementations.
#pragma once

#include "engine/tensor.hpp"

#include <initializer_list>

namespace flexnn::ops {

// Throws unless t is a defined float32 tensor; `op` and `what` name it in the message.
inline void check_float(const Tensor& t, const char* op, const char* what) {
  FLEXNN_CHECK(t.defined(), "{}: {} is undefined", op, what);
  FLEXNN_CHECK(t.dtype() == DType::Float32, "{}: {} must be float32, found {}", op, what, dtype_name(t.dtype()));
}

// Throws unless t has the given rank.
inline void check_rank(const Tensor& t, int64_t rank, const char* op, const char* what) {
  FLEXNN_CHECK(t.dim() == rank, "{}: {} must have {} dimensions, found shape {}", op, what, rank, shape_str(t.shape()));
}

// Throws unless every defined tensor lives on the first one's device; returns that device.
// The op's kernels then run there (ops never move data between devices implicitly).
inline Device common_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (first == nullptr) {
      first = t;
    } else {
      FLEXNN_CHECK(t->device() == first->device(), "{}: expected every tensor on {}, found one on {}", op,
                   first->device().str(), t->device().str());
    }
  }
  return first != nullptr ? first->device() : kCPU;
}

}  // namespace flexnn::ops
