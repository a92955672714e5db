// Single-precision GEMM on a CUDA device with the CPU kernel's row-major semantics
// (kernels/cpu/gemm.hpp), served by cuBLAS on the backend's stream, a strided-batched variant for
// convolutions, the bias broadcast and bias gradient that go with matrix products, and the
// process-wide TF32 switch. Pointers are device pointers.
#pragma once

#include <cstdint>

namespace flexnn::cuda {

// Whether GEMMs may use TF32 tensor cores (10-bit mantissa products, fp32 accumulation): false
// (full fp32) by default. Process-wide; takes effect from the next GEMM issued.
void set_allow_tf32(bool allow);
bool allow_tf32();

// C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T; lda/ldb/ldc are row strides of the
// stored matrices. beta = 0 ignores C's previous contents (NaN included).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// gemm on `batch` triples of matrices, the i-th at a + i * stride_a, b + i * stride_b and
// c + i * stride_c (a stride may be 0: the same matrix for every product).
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
                          float* c, int64_t ldc, int64_t stride_c, int64_t batch);

// y viewed as [outer, channels, inner]: y[o, c, i] = bias[c] (a linear layer: inner = 1; a
// convolution: outer = images, inner = the output plane).
void broadcast_bias(const float* bias, float* y, int64_t outer, int64_t channels, int64_t inner);
// dbias[c] = the sum of dy[o, c, i] over o and i, in a fixed order (overwrites dbias).
void bias_gradient(const float* dy, float* dbias, int64_t outer, int64_t channels, int64_t inner);

}  // namespace flexnn::cuda
