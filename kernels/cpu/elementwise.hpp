// Element-wise kernels: unary maps with their backward, and binary arithmetic with numpy
// broadcasting described by per-operand strides (0 along broadcast dimensions).
#pragma once

#include <cstdint>
#include <vector>

namespace flexnn::cpu {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Sigmoid, Relu, Tanh, Abs, Sign, Clamp, Pow, AddScalar, MulScalar };

// y = op(x); p0/p1 are the op's parameters (clamp bounds, exponent, scalar).
void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float p0 = 0, float p1 = 0);
// dx = dy * op'(x), using x and/or the saved output y as the op needs.
void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n, float p0 = 0,
                    float p1 = 0);

enum class BinaryOp { Add, Sub, Mul, Div };

// A broadcast binary op over `shape` (the output's); a_strides / b_strides give each operand's
// element stride per output dimension (0 where the operand is broadcast).
struct BroadcastShape {
  std::vector<int64_t> shape, a_strides, b_strides;
};
void binary_forward(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s);

}  // namespace flexnn::cpu
