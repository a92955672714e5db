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

// A grow-only, 64-byte aligned float array: the storage of a packed operand.
class AlignedFloats {
 public:
  // At least `size` floats; the old contents are lost when it grows.
  float* reserve(int64_t size);
  float* get() const { return data_.get(); }

 private:
  struct Delete {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], Delete> data_;
  int64_t capacity_ = 0;
};

class PackedB;

// op(A) [m, k] packed once for many products with the same A (a convolution's weight over its
// groups of images). Read-only once packed, so threads may share it; pack() and reset() reuse the
// storage. It is packed from a matrix, or written block by block by a producer of A's values
// (a transform) straight into the packed layout, with no matrix in between.
class PackedA {
 public:
  PackedA() = default;
  PackedA(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda) { pack(trans_a, m, k, a, lda); }
  // Packs op(A) (a must stay valid while this is used: the fallback build keeps only the pointer).
  void pack(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda);
  // Makes this an m x k matrix to be filled with write(): every element must be written before
  // a product uses it.
  void reset(int64_t m, int64_t k);
  // Writes the column-major block op(A)[r0 + r][c0 + q] = src[q * ld + r], r < rows, q < cols,
  // into a reset() PackedA (each column's rows are contiguous in the packed panels too, so a
  // block of a few columns of many rows is the fast shape). Threads may write disjoint blocks
  // concurrently. The fallback build keeps a plain row-major copy.
  void write(int64_t r0, int64_t rows, int64_t c0, int64_t cols, const float* src, int64_t ld);
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }
  // Rows per packed panel: row blocks of a multiple of it, at a multiple of it, pack with no
  // padding rows (1 in the fallback build).
  static int64_t panel_rows();

 private:
  friend void gemm(const PackedA& a, bool trans_b, int64_t n, float alpha, const float* b, int64_t ldb, float beta,
                   float* c, int64_t ldc);
  friend void gemm(const PackedA& a, const PackedB& b, float alpha, float beta, float* c, int64_t ldc);
  // The fallback build's op(A) source: the matrix given to pack(), or the copy write() fills.
  const float* matrix() const { return source_ != nullptr ? source_ : data_.get(); }
  bool trans_ = false;
  int64_t m_ = 0, k_ = 0;
  int64_t kc_ = 0;                 // KC block depth (packed build)
  const float* source_ = nullptr;  // the matrix packed (fallback build: multiplied), or null once reset()
  int64_t ld_ = 0;
  AlignedFloats data_;  // the packed panels, or the fallback's written copy
};

// op(B) [k, n] packed once for several products with the same B (one operand of Winograd's
// per-point GEMMs, used with several blocks of A's rows). Read-only once packed.
class PackedB {
 public:
  // Packs op(B) (b must stay valid while this is used: the fallback build keeps only the pointer).
  void pack(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }

 private:
  friend void gemm(const PackedA& a, const PackedB& b, float alpha, float beta, float* c, int64_t ldc);
  bool trans_ = false;
  int64_t k_ = 0, n_ = 0;
  const float* source_ = nullptr;
  int64_t ld_ = 0;
  AlignedFloats data_;  // the packed panels (packed build only)
};

// gemm(a.trans, trans_b, a.m(), n, a.k(), alpha, A, lda, b, ldb, beta, c, ldc) with A packed in
// advance: the same arithmetic, so bit-identical to it.
void gemm(const PackedA& a, bool trans_b, int64_t n, float alpha, const float* b, int64_t ldb, float beta, float* c,
          int64_t ldc);

// The same with B packed in advance too: only the products remain. Throws flexnn::Error unless
// a.k() == b.k().
void gemm(const PackedA& a, const PackedB& b, float alpha, float beta, float* c, int64_t ldc);

}  // namespace flexnn::cpu
