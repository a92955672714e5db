// Row-major GEMM on cuBLAS (column-major): row-major C = op(A) op(B) is column-major
// C^T = op(B)^T op(A)^T, so each call swaps the operands and the M/N extents and keeps the
// transposes. Also the bias kernels of matrix products: a broadcast, and a gradient reduced in a
// fixed order (per-thread partial sums in shared memory, then a tree), so it is deterministic.
#include "kernels/cuda/gemm.hpp"

#include <atomic>
#include <climits>
#include <string>

#include "kernels/cuda/error.hpp"
#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;

std::atomic<bool> tf32_allowed{false};

// C[m, n] (row stride ldc) = beta * C, or 0 when beta is 0: a product with k = 0.
__global__ void scale_matrix_kernel(float* c, long long m, long long n, long long ldc, float beta) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < m * n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    float& v = c[(e / n) * ldc + e % n];
    v = beta == 0.0f ? 0.0f : beta * v;
  }
}

__global__ void broadcast_bias_kernel(const float* bias, float* y, long long total, long long channels,
                                      long long inner) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x)
    y[e] = bias[(e / inner) % channels];
}

// inner = 1 (a [rows, channels] matrix): a block of 32 x 8 threads sums 32 adjacent columns, row
// lane ty taking rows ty, ty + 8, ... (coalesced across tx); then lane 0 adds the 8 partials in order.
constexpr int kColumnTile = 32, kRowLanes = 8;

__global__ void column_sum_kernel(const float* dy, float* dbias, long long rows, long long channels) {
  __shared__ float partial[kRowLanes][kColumnTile + 1];
  const long long c = blockIdx.x * static_cast<long long>(kColumnTile) + threadIdx.x;
  float sum = 0.0f;
  if (c < channels)
    for (long long r = threadIdx.y; r < rows; r += kRowLanes) sum += dy[r * channels + c];
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    float total = partial[0][threadIdx.x];
    for (int lane = 1; lane < kRowLanes; ++lane) total += partial[lane][threadIdx.x];
    dbias[c] = total;
  }
}

// inner > 1: one block per channel; thread t sums elements t, t + blockDim, ... of the channel's
// outer x inner values (consecutive threads read consecutive positions), then a tree in shared memory.
__global__ void plane_sum_kernel(const float* dy, float* dbias, long long outer, long long channels,
                                 long long inner) {
  __shared__ float partial[kThreads];
  const long long c = blockIdx.x;
  float sum = 0.0f;
  for (long long j = threadIdx.x; j < outer * inner; j += kThreads) {
    const long long o = j / inner;
    sum += dy[(o * channels + c) * inner + (j - o * inner)];
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) dbias[c] = partial[0];
}

int blas_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    raise_error(std::string("CUDA gemm: ") + what + " " + std::to_string(v) + " is outside cuBLAS's int range");
  return static_cast<int>(v);
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// The handle with the process-wide math mode applied.
cublasHandle_t blas_for_gemm() {
  cublasHandle_t handle = blas();
  FLEXNN_CUBLAS_CHECK(
      cublasSetMathMode(handle, tf32_allowed.load() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return handle;
}

// Handles the empty products; returns whether cuBLAS has anything left to do.
bool nonempty_product(int64_t m, int64_t n, int64_t k, float beta, float* c, int64_t ldc, int64_t batch,
                      int64_t stride_c) {
  if (m <= 0 || n <= 0 || batch <= 0) return false;
  if (k > 0) return true;
  for (int64_t i = 0; i < batch; ++i)
    FLEXNN_LAUNCH(scale_matrix_kernel, dim3(blocks_for(m * n, kThreads)), dim3(kThreads), 0, stream(),
                  c + i * stride_c, static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(ldc),
                  beta);
  return false;
}

}  // namespace

void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (!nonempty_product(m, n, k, beta, c, ldc, 1, 0)) return;
  FLEXNN_CUBLAS_CHECK(cublasSgemm(blas_for_gemm(), op(trans_b), op(trans_a), blas_int(n, "n"), blas_int(m, "m"),
                                  blas_int(k, "k"), &alpha, b, blas_int(ldb, "ldb"), a, blas_int(lda, "lda"), &beta,
                                  c, blas_int(ldc, "ldc")));
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
                          float* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (!nonempty_product(m, n, k, beta, c, ldc, batch, stride_c)) return;
  FLEXNN_CUBLAS_CHECK(cublasSgemmStridedBatched(
      blas_for_gemm(), op(trans_b), op(trans_a), blas_int(n, "n"), blas_int(m, "m"), blas_int(k, "k"), &alpha, b,
      blas_int(ldb, "ldb"), stride_b, a, blas_int(lda, "lda"), stride_a, &beta, c, blas_int(ldc, "ldc"), stride_c,
      blas_int(batch, "batch")));
}

void broadcast_bias(const float* bias, float* y, int64_t outer, int64_t channels, int64_t inner) {
  const long long total = outer * channels * inner;
  if (total <= 0) return;
  FLEXNN_LAUNCH(broadcast_bias_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), bias, y, total,
                static_cast<long long>(channels), static_cast<long long>(inner));
}

void bias_gradient(const float* dy, float* dbias, int64_t outer, int64_t channels, int64_t inner) {
  if (channels <= 0) return;
  if (inner == 1) {
    FLEXNN_LAUNCH(column_sum_kernel, dim3(static_cast<unsigned>((channels + kColumnTile - 1) / kColumnTile)),
                  dim3(kColumnTile, kRowLanes), 0, stream(), dy, dbias, static_cast<long long>(outer),
                  static_cast<long long>(channels));
  } else {
    FLEXNN_LAUNCH(plane_sum_kernel, dim3(static_cast<unsigned>(channels)), dim3(kThreads), 0, stream(), dy, dbias,
                  static_cast<long long>(outer), static_cast<long long>(channels), static_cast<long long>(inner));
  }
}

}  // namespace flexnn::cuda
