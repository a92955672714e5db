// Element-wise CUDA kernels: one grid-stride kernel per op (the op a template parameter, so each
// loop compiles to its own straight-line body), and a broadcasting binary kernel that walks the
// coalesced output shape (at most 6 dimensions) with per-operand strides.
#include "kernels/cuda/elementwise.hpp"

#include "kernels/cuda/error.hpp"
#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxRank = 6;

__device__ __forceinline__ float sign_of(float v) { return static_cast<float>((v > 0.0f) - (v < 0.0f)); }

template <UnaryOp Op>
__device__ __forceinline__ float unary_value(float x, float p0, float p1) {
  if constexpr (Op == UnaryOp::Neg) return -x;
  if constexpr (Op == UnaryOp::Exp) return expf(x);
  if constexpr (Op == UnaryOp::Log) return logf(x);
  if constexpr (Op == UnaryOp::Sqrt) return sqrtf(x);
  if constexpr (Op == UnaryOp::Sigmoid) return 1.0f / (1.0f + expf(-x));
  if constexpr (Op == UnaryOp::Relu) return (x > 0.0f) || (x != x) ? x : 0.0f;
  if constexpr (Op == UnaryOp::Tanh) return tanhf(x);
  if constexpr (Op == UnaryOp::Abs) return fabsf(x);
  if constexpr (Op == UnaryOp::Sign) return x == x ? sign_of(x) : x;
  if constexpr (Op == UnaryOp::Clamp) return x < p0 ? p0 : (x > p1 ? p1 : x);
  if constexpr (Op == UnaryOp::Pow) return powf(x, p0);
  if constexpr (Op == UnaryOp::AddScalar) return x + p0;
  if constexpr (Op == UnaryOp::MulScalar) return x * p0;
  return x;
}

// dx for one element, from x, the saved output y and dy.
template <UnaryOp Op>
__device__ __forceinline__ float unary_gradient(float x, float y, float dy, float p0, float p1) {
  if constexpr (Op == UnaryOp::Neg) return -dy;
  if constexpr (Op == UnaryOp::Exp) return dy * y;
  if constexpr (Op == UnaryOp::Log) return dy / x;
  if constexpr (Op == UnaryOp::Sqrt) return dy / (2.0f * y);
  if constexpr (Op == UnaryOp::Sigmoid) return dy * y * (1.0f - y);
  if constexpr (Op == UnaryOp::Relu) return y > 0.0f ? dy : 0.0f;
  if constexpr (Op == UnaryOp::Tanh) return dy * (1.0f - y * y);
  if constexpr (Op == UnaryOp::Abs) return dy * sign_of(x);
  if constexpr (Op == UnaryOp::Sign) return 0.0f;
  if constexpr (Op == UnaryOp::Clamp) return (x >= p0) && (x <= p1) ? dy : 0.0f;
  if constexpr (Op == UnaryOp::Pow) return dy * p0 * powf(x, p0 - 1.0f);
  if constexpr (Op == UnaryOp::AddScalar) return dy;
  if constexpr (Op == UnaryOp::MulScalar) return dy * p0;
  return dy;
}

template <UnaryOp Op>
__global__ void unary_forward_kernel(const float* x, float* y, long long n, float p0, float p1) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] = unary_value<Op>(x[i], p0, p1);
}

// x or y may be null when the op does not read it.
template <UnaryOp Op>
__global__ void unary_backward_kernel(const float* x, const float* y, const float* dy, float* dx, long long n, float p0,
                                      float p1) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dx[i] = unary_gradient<Op>(x != nullptr ? x[i] : 0.0f, y != nullptr ? y[i] : 0.0f, dy[i], p0, p1);
}

// Calls f.template operator()<Op>() with the op as a compile-time constant.
template <typename F>
void with_unary_op(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::Neg: return f.template operator()<UnaryOp::Neg>();
    case UnaryOp::Exp: return f.template operator()<UnaryOp::Exp>();
    case UnaryOp::Log: return f.template operator()<UnaryOp::Log>();
    case UnaryOp::Sqrt: return f.template operator()<UnaryOp::Sqrt>();
    case UnaryOp::Sigmoid: return f.template operator()<UnaryOp::Sigmoid>();
    case UnaryOp::Relu: return f.template operator()<UnaryOp::Relu>();
    case UnaryOp::Tanh: return f.template operator()<UnaryOp::Tanh>();
    case UnaryOp::Abs: return f.template operator()<UnaryOp::Abs>();
    case UnaryOp::Sign: return f.template operator()<UnaryOp::Sign>();
    case UnaryOp::Clamp: return f.template operator()<UnaryOp::Clamp>();
    case UnaryOp::Pow: return f.template operator()<UnaryOp::Pow>();
    case UnaryOp::AddScalar: return f.template operator()<UnaryOp::AddScalar>();
    case UnaryOp::MulScalar: return f.template operator()<UnaryOp::MulScalar>();
  }
}

// The coalesced broadcast, by value in the kernel's parameters.
struct Broadcast {
  int rank;
  long long shape[kMaxRank], a_strides[kMaxRank], b_strides[kMaxRank];
};

template <BinaryOp Op>
__device__ __forceinline__ float binary_value(float a, float b) {
  if constexpr (Op == BinaryOp::Add) return a + b;
  if constexpr (Op == BinaryOp::Sub) return a - b;
  if constexpr (Op == BinaryOp::Mul) return a * b;
  return a / b;
}

template <BinaryOp Op>
__global__ void binary_kernel(const float* a, const float* b, float* out, long long n, Broadcast s) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    long long rest = i, offset_a = 0, offset_b = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const long long k = rest % s.shape[d];
      rest /= s.shape[d];
      offset_a += k * s.a_strides[d];
      offset_b += k * s.b_strides[d];
    }
    out[i] = binary_value<Op>(a[offset_a], b[offset_b]);
  }
}

template <BinaryOp Op>
void launch_binary(const float* a, const float* b, float* out, long long n, const Broadcast& s) {
  FLEXNN_LAUNCH(binary_kernel<Op>, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, stream(), a, b, out, n, s);
}

}  // namespace

void unary_forward(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  if (n <= 0) return;
  with_unary_op(op, [&]<UnaryOp Op>() {
    FLEXNN_LAUNCH(unary_forward_kernel<Op>, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, stream(), x, y,
                  static_cast<long long>(n), p0, p1);
  });
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* dy, float* dx, int64_t n, float p0,
                    float p1) {
  if (n <= 0) return;
  with_unary_op(op, [&]<UnaryOp Op>() {
    FLEXNN_LAUNCH(unary_backward_kernel<Op>, dim3(blocks_for(n, kThreads)), dim3(kThreads), 0, stream(), x, y, dy, dx,
                  static_cast<long long>(n), p0, p1);
  });
}

void binary_forward(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& shape) {
  const BroadcastShape c = coalesce(shape);
  if (c.shape.size() > kMaxRank)
    raise_error("CUDA binary op: at most " + std::to_string(kMaxRank) + " dimensions after merging, found " +
                std::to_string(c.shape.size()));
  Broadcast s{static_cast<int>(c.shape.size()), {}, {}, {}};
  long long n = 1;
  for (size_t d = 0; d < c.shape.size(); ++d) {
    s.shape[d] = c.shape[d];
    s.a_strides[d] = c.a_strides[d];
    s.b_strides[d] = c.b_strides[d];
    n *= c.shape[d];
  }
  if (n <= 0) return;
  switch (op) {
    case BinaryOp::Add: return launch_binary<BinaryOp::Add>(a, b, out, n, s);
    case BinaryOp::Sub: return launch_binary<BinaryOp::Sub>(a, b, out, n, s);
    case BinaryOp::Mul: return launch_binary<BinaryOp::Mul>(a, b, out, n, s);
    case BinaryOp::Div: return launch_binary<BinaryOp::Div>(a, b, out, n, s);
  }
}

}  // namespace flexnn::cuda
