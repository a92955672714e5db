// Single-precision GEMM on row-major matrices: a packed, register-blocked AVX-512 (or AVX2) kernel
// spread over the thread pool (Eigen without those), with a summation order that depends only on
// the problem's shape, so the result is bit-identical for any thread count.
#pragma once

#include <cstdint>

namespace flexnn::cpu {

// C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T; lda/ldb/ldc are row strides of the
// stored matrices. beta = 0 ignores C's previous contents (NaN included).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace flexnn::cpu
