// Element-wise kernels. Each op's loop is a separate template instantiation so the compiler
// vectorises it; work is spread over the pool in fixed chunks.
#include "kernels/cpu/elementwise.hpp"

#include "kernels/cpu/parallel.hpp"

#include <cmath>

namespace flexnn::cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;

template <typename F>
void map(int64_t n, F f) {
  parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

float sign_of(float v) { return static_cast<float>((v > 0.0f) - (v < 0.0f)); }

template <typename F>
void broadcast_loop(const float* a, const float* b, float* out, const BroadcastShape& s, F f) {
  const BroadcastShape c = coalesce(s);
  const size_t rank = c.shape.size();
  const int64_t inner = c.shape.back(), sa = c.a_strides.back(), sb = c.b_strides.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < rank; ++d) rows *= c.shape[d];
  if (rows == 0 || inner == 0) return;  // an empty output
  const int64_t grain = std::max<int64_t>(1, kGrain / inner);
  parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rest = r, offset_a = 0, offset_b = 0;
      for (size_t d = rank - 1; d-- > 0;) {
        const int64_t i = rest % c.shape[d];
        rest /= c.shape[d];
        offset_a += i * c.a_strides[d];
        offset_b += i * c.b_strides[d];
      }
      const float* pa = a + offset_a;
      const float* pb = b + offset_b;
      float* po = out + r * inner;
      if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], pb[i]);
      } else if (sa == 1 && sb == 0) {
        const float vb = *pb;
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], vb);
      } else if (sa == 0 && sb == 1) {
        const float va = *pa;
        for (int64_t i = 0; i < inner; ++i) po[i] = f(va, pb[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i * sa], pb[i * sb]);
      }
    }
  });
}

}  // namespace

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  switch (op) {
    case UnaryOp::Neg: return map(n, [&](int64_t i) { y[i] = -x[i]; });
    case UnaryOp::Exp: return map(n, [&](int64_t i) { y[i] = std::exp(x[i]); });
    case UnaryOp::Log: return map(n, [&](int64_t i) { y[i] = std::log(x[i]); });
    case UnaryOp::Sqrt: return map(n, [&](int64_t i) { y[i] = std::sqrt(x[i]); });
    case UnaryOp::Sigmoid: return map(n, [&](int64_t i) { y[i] = 1.0f / (1.0f + std::exp(-x[i])); });
    case UnaryOp::Relu: return map(n, [&](int64_t i) { const float v = x[i]; y[i] = (v > 0.0f) | (v != v) ? v : 0.0f; });
    case UnaryOp::Tanh: return map(n, [&](int64_t i) { y[i] = std::tanh(x[i]); });
    case UnaryOp::Abs: return map(n, [&](int64_t i) { y[i] = std::abs(x[i]); });
    case UnaryOp::Sign: return map(n, [&](int64_t i) { y[i] = x[i] == x[i] ? sign_of(x[i]) : x[i]; });
    case UnaryOp::Clamp:
      return map(n, [&, low = p0, high = p1](int64_t i) {
        const float v = x[i];
        y[i] = v < low ? low : (v > high ? high : v);
      });
    case UnaryOp::Pow: return map(n, [&](int64_t i) { y[i] = std::pow(x[i], p0); });
    case UnaryOp::AddScalar: return map(n, [&](int64_t i) { y[i] = x[i] + p0; });
    case UnaryOp::MulScalar: return map(n, [&](int64_t i) { y[i] = x[i] * p0; });
  }
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n, float p0,
                    float p1) {
  switch (op) {
    case UnaryOp::Neg: return map(n, [&](int64_t i) { dx[i] = -dy[i]; });
    case UnaryOp::Exp: return map(n, [&](int64_t i) { dx[i] = dy[i] * y[i]; });
    case UnaryOp::Log: return map(n, [&](int64_t i) { dx[i] = dy[i] / x[i]; });
    case UnaryOp::Sqrt: return map(n, [&](int64_t i) { dx[i] = dy[i] / (2.0f * y[i]); });
    case UnaryOp::Sigmoid: return map(n, [&](int64_t i) { dx[i] = dy[i] * y[i] * (1.0f - y[i]); });
    // dy[i] is read unconditionally so that the select vectorises (a conditional load does not).
    case UnaryOp::Relu: return map(n, [&](int64_t i) { const float g = dy[i]; dx[i] = y[i] > 0.0f ? g : 0.0f; });
    case UnaryOp::Tanh: return map(n, [&](int64_t i) { dx[i] = dy[i] * (1.0f - y[i] * y[i]); });
    case UnaryOp::Abs: return map(n, [&](int64_t i) { dx[i] = dy[i] * sign_of(x[i]); });
    case UnaryOp::Sign: return map(n, [&](int64_t i) { dx[i] = 0.0f; });
    case UnaryOp::Clamp:
      return map(n, [&](int64_t i) { const float g = dy[i]; dx[i] = (x[i] >= p0) & (x[i] <= p1) ? g : 0.0f; });
    case UnaryOp::Pow: return map(n, [&](int64_t i) { dx[i] = dy[i] * p0 * std::pow(x[i], p0 - 1.0f); });
    case UnaryOp::AddScalar: return map(n, [&](int64_t i) { dx[i] = dy[i]; });
    case UnaryOp::MulScalar: return map(n, [&](int64_t i) { dx[i] = dy[i] * p0; });
  }
}

void binary_forward(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s) {
  switch (op) {
    case BinaryOp::Add: return broadcast_loop(a, b, out, s, [](float u, float v) { return u + v; });
    case BinaryOp::Sub: return broadcast_loop(a, b, out, s, [](float u, float v) { return u - v; });
    case BinaryOp::Mul: return broadcast_loop(a, b, out, s, [](float u, float v) { return u * v; });
    case BinaryOp::Div: return broadcast_loop(a, b, out, s, [](float u, float v) { return u / v; });
  }
}

}  // namespace flexnn::cpu
