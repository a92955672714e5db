// What the element-wise kernels of both backends compute: the unary and binary ops, and numpy
// broadcasting described by per-operand strides (0 along broadcast dimensions), with the merging
// of adjacent dimensions that both backends apply before their loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace flexnn {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Sigmoid, Relu, Tanh, Abs, Sign, Clamp, Pow, AddScalar, MulScalar };
enum class BinaryOp { Add, Sub, Mul, Div };

// A broadcast binary op over `shape` (the output's); a_strides / b_strides give each operand's
// element stride per output dimension (0 where the operand is broadcast).
struct BroadcastShape {
  std::vector<int64_t> shape, a_strides, b_strides;
};

// The same op with size-1 dimensions dropped and adjacent dimensions merged where both operands'
// strides allow it, so the innermost dimension is as long as possible (at least rank 1).
inline BroadcastShape coalesce(const BroadcastShape& s) {
  BroadcastShape c;
  for (std::size_t d = 0; d < s.shape.size(); ++d) {
    if (s.shape[d] == 1) continue;
    if (!c.shape.empty() && c.a_strides.back() == s.a_strides[d] * s.shape[d] &&
        c.b_strides.back() == s.b_strides[d] * s.shape[d]) {
      c.shape.back() *= s.shape[d];
      c.a_strides.back() = s.a_strides[d];
      c.b_strides.back() = s.b_strides[d];
    } else {
      c.shape.push_back(s.shape[d]);
      c.a_strides.push_back(s.a_strides[d]);
      c.b_strides.push_back(s.b_strides[d]);
    }
  }
  if (c.shape.empty()) c = BroadcastShape{{1}, {0}, {0}};
  return c;
}

}  // namespace flexnn
