// Element-wise kernels: unary maps with their backward, and binary arithmetic with numpy
// broadcasting described by per-operand strides (0 along broadcast dimensions).
#pragma once

#include "kernels/elementwise_ops.hpp"

namespace flexnn::cpu {

// y = op(x); p0/p1 are the op's parameters (clamp bounds, exponent, scalar).
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float p0 = 0, float p1 = 0);
// dx = dy * op'(x), using x and/or the saved output y as the op needs.
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n, float p0 = 0,
                    float p1 = 0);

void binary_forward(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s);

}  // namespace flexnn::cpu
