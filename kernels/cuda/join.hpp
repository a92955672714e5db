// The copies behind concat and slice on a CUDA device: a block of equally long rows moved between
// two row-strided layouts (a range of one dimension of a row-major tensor is such a block). Pointers
// are device pointers; the work is queued on the backend's stream.
#pragma once

#include <cstdint>

namespace flexnn::cuda {

// dst[o * dst_stride + j] = src[o * src_stride + j] for o < rows, j < row_length (in floats).
void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t row_length);

}  // namespace flexnn::cuda
