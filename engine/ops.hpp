// The functional ops, with torch's names and semantics. Each checks its inputs (a mismatch names
// the op and both shapes), runs the kernel for the tensors' device, and records its backward when
// an input requires grad. Element-wise binary ops broadcast like numpy/torch.
#pragma once

#include "engine/tensor.hpp"
#include "kernels/flexible_gate.hpp"

#include <optional>
#include <vector>

namespace flexnn {
class Generator;
}

namespace flexnn::ops {

// Element-wise, broadcasting.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float b);
Tensor mul(const Tensor& a, float b);
Tensor pow(const Tensor& a, float exponent);

// Element-wise, unary.
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // sign(0) = 0; gradient 0
Tensor clamp(const Tensor& x, float low, float high);  // gradient 1 inside [low, high], else 0

// Reductions. Sums are computed in fixed-size blocks, so results do not depend on thread count.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Sums x down to `shape`, the inverse of broadcasting `shape` up to x's shape (torch's sum_to_size).
Tensor sum_to(const Tensor& x, const Shape& shape);
struct MaxResult {
  Tensor values;
  Tensor indices;  // int64, the first maximum
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// Linear algebra (the packed, multithreaded, deterministic GEMM of kernels/cpu/gemm).
Tensor matmul(const Tensor& a, const Tensor& b);  // [M,K] x [K,N]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});  // x [N,in], weight [out,in]

// Convolution and pooling on NCHW tensors.
struct Size2 {
  int64_t h, w;
  Size2(int64_t both) : h(both), w(both) {}  // NOLINT: an int means the same value for h and w
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1, Size2 padding = 0);
Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                  bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);

// The flexible layer's blend (the paper's Eq. 1; kernels/flexible_gate.hpp): max-pools x with
// `pool` and blends the result m unit by unit with c, the convolution branch's output [N, C, H, W],
// under gate_values [C, H, W] (thresholds T, or the random mode's 0/1 mask). x has C channels
// (one to one) or 1 (its pooled map broadcast to all C). Gradients flow to c, to x through the
// pool's first maxima, and to the thresholds; never to a mask. In one fused kernel each way.
struct FlexiblePool {
  Size2 kernel;
  Size2 stride = 1;
  Size2 padding = 0;
};
struct FlexibleStats {  // units that took the pool branch, accumulated over calls
  int64_t pool_units = 0, units = 0;
};
Tensor flexible_blend(const Tensor& c, const Tensor& x, const Tensor& gate_values, FlexGate gate, float sharpness,
                      const FlexiblePool& pool, FlexibleStats* stats = nullptr);
// The whole flexible layer: flexible_blend(conv2d(x, weight, bias, stride, padding), x, ...). On the
// CPU it is that composition; on CUDA one fused kernel each way (the convolution, the pool, the gate
// and the blend in one pass; the gradients of x, weight, bias and thresholds in one pass).
Tensor flexible_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                       const Tensor& gate_values, FlexGate gate, float sharpness, const FlexiblePool& pool,
                       FlexibleStats* stats = nullptr);

// Batch normalisation over [N,C] or [N,C,H,W]. In training, batch statistics normalise and the
// running statistics (if given) move by `momentum`, with the unbiased variance, as in torch.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, float momentum = 0.1f, float eps = 1e-5f);

// Dropout: zeroes elements (dropout) or whole channels of [N,C,...] (dropout2d) with probability p,
// scales the rest by 1/(1-p); identity when not training. Masks come from the generator's stream.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);
Tensor dropout2d(const Tensor& x, float p, bool training, Generator& gen);

// Losses.
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
Tensor cross_entropy(const Tensor& logits, const Tensor& targets);  // logits [N,C], targets int64 [N]; mean

// Joining and cutting.
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);  // dim 0 is a view

}  // namespace flexnn::ops

namespace flexnn {

inline Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor operator-(const Tensor& a) { return ops::neg(a); }
inline Tensor operator+(const Tensor& a, float b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, float b) { return ops::add(a, -b); }
inline Tensor operator*(const Tensor& a, float b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, float b) { return ops::mul(a, 1.0f / b); }
inline Tensor operator+(float a, const Tensor& b) { return ops::add(b, a); }
inline Tensor operator*(float a, const Tensor& b) { return ops::mul(b, a); }
inline Tensor operator-(float a, const Tensor& b) { return ops::add(ops::neg(b), a); }

}  // namespace flexnn

// ---- HMAX (models/hmax.hpp) -------------------------------------------------------------------
namespace flexnn::ops {

// HMAX's S2 units: the gaussian tuning exp(−d / (2σ²)) of the squared Euclidean distance between
// each C1 patch x and prototype w, d = ||x||² − 2 x·w + ||w||², from its three terms: cross
// [N, P, H, W] (the convolution of C1 with the prototypes), patch_sq [N, 1, H, W] (each window's
// sum of squares) and weight_sq [P] (each prototype's). One fused pass each way on the CPU.
Tensor hmax_s2(const Tensor& cross, const Tensor& patch_sq, const Tensor& weight_sq, float sigma);
// The same units' maximum over positions, [N, P] (a C2 unit over one map): exp(−min d / (2σ²)),
// one exp per unit; the gradient flows through the first position of the least distance.
Tensor hmax_s2_max(const Tensor& cross, const Tensor& patch_sq, const Tensor& weight_sq, float sigma);

// conv2d(x, weight, {}, stride, padding), computed as one GEMM of the images [N, C_in*H*W] with
// the weight's Toeplitz expansion [C_out*H_out*W_out, C_in*H*W] (kernels/cpu/hmax.hpp): for
// inputs smaller than the kernel window, mostly padding (HMAX's S2 on C1 maps of 3x3 to 8x8 with
// prototypes up to 16x16), it multiplies fewer zeros than im2col. On CUDA it is conv2d.
Tensor conv2d_toeplitz(const Tensor& x, const Tensor& weight, Size2 stride = 1, Size2 padding = 0);

}  // namespace flexnn::ops
