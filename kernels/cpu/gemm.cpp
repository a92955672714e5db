// GEMM: the output is cut into at most 8 column (or row) blocks, 16-aligned, chosen from the
// shape alone; each block is one single-threaded Eigen product on mapped memory.
#include "kernels/cpu/gemm.hpp"

#include "kernels/cpu/parallel.hpp"

#include <Eigen/Core>

#include <algorithm>

namespace flexnn::cpu {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
using Map = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;

// One block: rows [r0, r1) and columns [c0, c1) of C.
void gemm_block(bool trans_a, bool trans_b, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t rows = r1 - r0, cols = c1 - c0;
  // op(A) rows [r0, r1): stored rows r0.. (no transpose) or stored columns r0.. (transpose).
  const float* a_block = trans_a ? a + r0 : a + r0 * lda;
  const float* b_block = trans_b ? b + c0 * ldb : b + c0;
  Map c_block(c + r0 * ldc + c0, rows, cols, Eigen::OuterStride<>(ldc));
  if (beta == 0.0f) {
    c_block.setZero();
  } else if (beta != 1.0f) {
    c_block *= beta;
  }
  if (k == 0) return;
  ConstMap a_stored(a_block, trans_a ? k : rows, trans_a ? rows : k, Eigen::OuterStride<>(lda));
  ConstMap b_stored(b_block, trans_b ? cols : k, trans_b ? k : cols, Eigen::OuterStride<>(ldb));
  if (trans_a && trans_b) {
    c_block.noalias() += alpha * (a_stored.transpose() * b_stored.transpose());
  } else if (trans_a) {
    c_block.noalias() += alpha * (a_stored.transpose() * b_stored);
  } else if (trans_b) {
    c_block.noalias() += alpha * (a_stored * b_stored.transpose());
  } else {
    c_block.noalias() += alpha * (a_stored * b_stored);
  }
}

// Block width: at most 8 blocks, each a multiple of 16 and at least 64 wide.
int64_t block_size(int64_t extent) { return std::max<int64_t>(64, ((extent + 7) / 8 + 15) / 16 * 16); }

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const bool small = m * n * k < (int64_t{1} << 18);
  if (small) {
    gemm_block(trans_a, trans_b, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else if (n >= m) {
    parallel_for(0, n, block_size(n), [&](int64_t c0, int64_t c1) {
      gemm_block(trans_a, trans_b, 0, m, c0, c1, k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
  } else {
    parallel_for(0, m, block_size(m), [&](int64_t r0, int64_t r1) {
      gemm_block(trans_a, trans_b, r0, r1, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    });
  }
}

}  // namespace flexnn::cpu
