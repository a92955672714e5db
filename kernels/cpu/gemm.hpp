// Single-precision GEMM on row-major matrices: a packed, register-blocked AVX-512 (or AVX2) kernel
// spread over the thread pool (Eigen without those), with a summation order that depends only on
// the problem's shape, so the result is bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <memory>

namespace flexnn::cpu {

// C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T; lda/ldb/ldc are row strides of the
// stored matrices. beta = 0 ignores C's previous contents (NaN included).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// op(A) [m, k] packed once for many products with the same A (a convolution's weight over its
// groups of images). Read-only once packed, so threads may share it; pack() reuses the storage.
class PackedA {
 public:
  PackedA() = default;
  PackedA(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda) { pack(trans_a, m, k, a, lda); }
  // Packs op(A) (a must stay valid while this is used: the fallback build keeps only the pointer).
  void pack(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda);
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }

 private:
  friend void gemm(const PackedA& a, bool trans_b, int64_t n, float alpha, const float* b, int64_t ldb, float beta,
                   float* c, int64_t ldc);
  struct AlignedDelete {
    void operator()(float* p) const;
  };
  bool trans_ = false;
  int64_t m_ = 0, k_ = 0;
  const float* source_ = nullptr;
  int64_t ld_ = 0;
  std::unique_ptr<float[], AlignedDelete> data_;  // the packed panels (packed build only)
  int64_t capacity_ = 0;
};

// gemm(a.trans, trans_b, a.m(), n, a.k(), alpha, A, lda, b, ldb, beta, c, ldc) with A packed in
// advance: the same arithmetic, so bit-identical to it.
void gemm(const PackedA& a, bool trans_b, int64_t n, float alpha, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc);

}  // namespace flexnn::cpu
