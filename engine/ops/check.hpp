// Input checks shared by the op implementations.
#pragma once

#include "engine/tensor.hpp"

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

}  // namespace flexnn::ops
