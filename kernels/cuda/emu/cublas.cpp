// The emulated cuBLAS. Column-major C = op(A) op(B) is, read row-major, C^T = op(B)^T op(A)^T: the
// stored column-major matrices are the row-major transposes, so cpu::gemm gets B as its first
// operand, A as its second, transposed exactly when cuBLAS's op says so.
#include "kernels/cuda/emu/cublas.hpp"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "engine/error.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cuda/emu/device_memory.hpp"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
};

namespace {

struct Handles {
  std::mutex mutex;
  std::unordered_set<cublasHandle_t> live;
};

Handles& handles() {
  static Handles instance;
  return instance;
}

bool is_live(cublasHandle_t handle) {
  Handles& h = handles();
  std::lock_guard lock(h.mutex);
  return h.live.count(handle) == 1;
}

cublasStatus_t failure(cublasStatus_t status, std::string detail) {
  flexnn::emu::set_last_error_detail(std::move(detail));
  return status;
}

cublasStatus_t not_initialized(const char* call, cublasHandle_t handle) {
  return failure(CUBLAS_STATUS_NOT_INITIALIZED, fmt::format("{}: handle {} is not a live cublasCreate handle", call,
                                                            static_cast<const void*>(handle)));
}

bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// A column-major rows x cols matrix with leading dimension ld spans (cols - 1) * ld + rows floats.
cublasStatus_t check_matrix(const char* call, const char* name, const float* data, int rows, int cols, int ld,
                            long long stride, int batches) {
  const auto span = static_cast<std::size_t>(static_cast<long long>(cols - 1) * ld + rows) * sizeof(float);
  for (int batch = 0; batch < batches; ++batch) {
    if (auto problem = flexnn::emu::device_range_problem(data + batch * stride, span)) {
      return failure(CUBLAS_STATUS_INVALID_VALUE, fmt::format("{}: matrix {} ({}x{}, ld {}) of batch {}: {}", call,
                                                              name, rows, cols, ld, batch, *problem));
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t gemm(const char* call, cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                    int n, int k, const float* alpha, const float* A, int lda, long long strideA, const float* B,
                    int ldb, long long strideB, const float* beta, float* C, int ldc, long long strideC, int batches) {
  if (!is_live(handle)) return not_initialized(call, handle);
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  const int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0 || batches < 0 || lda < std::max(1, a_rows) ||
      ldb < std::max(1, b_rows) || ldc < std::max(1, m) || alpha == nullptr || beta == nullptr) {
    return failure(CUBLAS_STATUS_INVALID_VALUE,
                   fmt::format("{}: invalid arguments: transa {}, transb {}, m {}, n {}, k {}, lda {} (needs >= {}), "
                               "ldb {} (needs >= {}), ldc {} (needs >= {}), batchCount {}, alpha {}, beta {}",
                               call, static_cast<int>(transa), static_cast<int>(transb), m, n, k, lda,
                               std::max(1, a_rows), ldb, std::max(1, b_rows), ldc, std::max(1, m), batches,
                               static_cast<const void*>(alpha), static_cast<const void*>(beta)));
  }
  if (m == 0 || n == 0 || batches == 0) return CUBLAS_STATUS_SUCCESS;
  const bool reads_ab = k > 0 && *alpha != 0.0f;
  if (reads_ab) {
    if (auto status = check_matrix(call, "A", A, a_rows, a_cols, lda, strideA, batches)) return status;
    if (auto status = check_matrix(call, "B", B, b_rows, b_cols, ldb, strideB, batches)) return status;
  }
  if (auto status = check_matrix(call, "C", C, m, n, ldc, strideC, batches)) return status;
  for (int batch = 0; batch < batches; ++batch) {
    flexnn::cpu::gemm(tb, ta, n, m, k, *alpha, B + batch * strideB, ldb, A + batch * strideA, lda, *beta,
                      C + batch * strideC, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate: handle is null");
  *handle = new cublasContext;
  Handles& h = handles();
  std::lock_guard lock(h.mutex);
  h.live.insert(*handle);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  {
    Handles& h = handles();
    std::lock_guard lock(h.mutex);
    if (h.live.erase(handle) == 0) return not_initialized("cublasDestroy", handle);
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t streamId) {
  if (!is_live(handle)) return not_initialized("cublasSetStream", handle);
  if (!flexnn::emu::is_live_stream(streamId)) {
    return failure(CUBLAS_STATUS_INVALID_VALUE,
                   fmt::format("cublasSetStream: stream {} is not a live stream", static_cast<const void*>(streamId)));
  }
  handle->stream = streamId;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* streamId) {
  if (!is_live(handle)) return not_initialized("cublasGetStream", handle);
  if (streamId == nullptr) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasGetStream: streamId is null");
  *streamId = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!is_live(handle)) return not_initialized("cublasSetMathMode", handle);
  const int base = static_cast<int>(mode) & ~static_cast<int>(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  if (base < 0 || base > static_cast<int>(CUBLAS_TF32_TENSOR_OP_MATH)) {
    return failure(CUBLAS_STATUS_INVALID_VALUE,
                   fmt::format("cublasSetMathMode: {} is not a cublasMath_t", static_cast<int>(mode)));
  }
  handle->math_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!is_live(handle)) return not_initialized("cublasGetMathMode", handle);
  if (mode == nullptr) return failure(CUBLAS_STATUS_INVALID_VALUE, "cublasGetMathMode: mode is null");
  *mode = handle->math_mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown error";
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  return gemm("cublasSgemm", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC, int batchCount) {
  return gemm("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
              beta, C, ldc, strideC, batchCount);
}
