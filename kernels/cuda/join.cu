// Strided row copies on CUDA: one grid-stride loop over every copied element, consecutive threads
// on consecutive elements of a row, so both sides are read and written coalesced. One row (or rows
// packed back to back on both sides) is a plain device-to-device copy.
#include "kernels/cuda/join.hpp"

#include "kernels/cuda/memory.hpp"
#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

__global__ void copy_rows_kernel(const float* src, long long src_stride, float* dst, long long dst_stride, long long n,
                                 long long row_length) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long o = k / row_length, j = k % row_length;
    dst[o * dst_stride + j] = src[o * src_stride + j];
  }
}

}  // namespace

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t row_length) {
  const long long n = static_cast<long long>(rows) * row_length;
  if (n <= 0) return;
  if (rows == 1 || (src_stride == row_length && dst_stride == row_length)) {
    copy_device_to_device(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    return;
  }
  FLEXNN_LAUNCH(copy_rows_kernel, dim3(blocks_for(n)), dim3(256), 0, stream(), src, static_cast<long long>(src_stride),
                dst, static_cast<long long>(dst_stride), n, static_cast<long long>(row_length));
}

}  // namespace flexnn::cuda
