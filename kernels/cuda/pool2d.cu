// Pooling on CUDA: one thread per output element for the forwards (the window visited in
// row-major order, as on the CPU), one thread per input element for the backwards (a gather over
// the windows that cover it: no atomics). The additions happen in the CPU kernels' order, so the
// results match them bit for bit: window order for the forwards, output order for the max
// backward, rows ascending then columns descending for the average backward (the CPU's tap loop).
#include "kernels/cuda/pool2d.hpp"

#include <cmath>

#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;

// The window geometry in 32-bit ints (one plane's indices fit), passed by value to the kernels.
struct Window {
  int h, w, out_h, out_w, kh, kw, stride_h, stride_w, pad_h, pad_w;
};

Window window_of(const Pool2dShape& s) {
  return {static_cast<int>(s.h),        static_cast<int>(s.w),        static_cast<int>(s.out_h),
          static_cast<int>(s.out_w),    static_cast<int>(s.kh),       static_cast<int>(s.kw),
          static_cast<int>(s.stride_h), static_cast<int>(s.stride_w), static_cast<int>(s.pad_h),
          static_cast<int>(s.pad_w)};
}

// The outputs [first, last] along one dimension whose windows cover input position i.
struct Covering {
  int first, last;
};

__device__ __forceinline__ Covering covering(int i, int k, int stride, int pad, int out) {
  const int lowest = i + pad - k + 1;  // o * stride > lowest - 1
  const int first = lowest <= 0 ? 0 : (lowest + stride - 1) / stride;
  const int last = min((i + pad) / stride, out - 1);
  return {first, last};
}

// torch's average divisor for output (oh, ow); see kernels/cpu/pool2d.cpp.
__device__ __forceinline__ float avg_divisor(const Window& s, bool count_include_pad, int oh, int ow) {
  const int h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
  const int h1 = min(h0 + s.kh, s.h + s.pad_h), w1 = min(w0 + s.kw, s.w + s.pad_w);
  if (count_include_pad) return static_cast<float>((h1 - h0) * (w1 - w0));
  return static_cast<float>((min(h1, s.h) - max(h0, 0)) * (min(w1, s.w) - max(w0, 0)));
}

__global__ void max_forward_kernel(Window s, const float* x, float* y, int64_t* indices, long long total) {
  const int out_plane = s.out_h * s.out_w;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / out_plane;
    const int r = static_cast<int>(e - p * out_plane), oh = r / s.out_w, ow = r % s.out_w;
    const float* plane = x + p * s.h * s.w;
    const int h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
    const int h_begin = max(h0, 0), h_end = min(h0 + s.kh, s.h), w_begin = max(w0, 0), w_end = min(w0 + s.kw, s.w);
    float best = -INFINITY;
    int at = h_begin * s.w + w_begin;
    for (int ih = h_begin; ih < h_end; ++ih) {
      for (int iw = w_begin; iw < w_end; ++iw) {
        const float v = plane[ih * s.w + iw];
        if (v > best || v != v) {
          best = v;
          at = ih * s.w + iw;
        }
      }
    }
    y[e] = best;
    if (indices != nullptr) indices[e] = at;
  }
}

__global__ void max_backward_kernel(Window s, const float* dy, const int64_t* indices, float* dx, long long total) {
  const int in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / in_plane;
    const int r = static_cast<int>(e - p * in_plane), ih = r / s.w, iw = r % s.w;
    const Covering rows = covering(ih, s.kh, s.stride_h, s.pad_h, s.out_h);
    const Covering columns = covering(iw, s.kw, s.stride_w, s.pad_w, s.out_w);
    const long long base = p * out_plane;
    float sum = 0.0f;
    for (int oh = rows.first; oh <= rows.last; ++oh) {
      for (int ow = columns.first; ow <= columns.last; ++ow) {
        const long long o = base + oh * s.out_w + ow;
        if (indices[o] == r) sum += dy[o];
      }
    }
    dx[e] = sum;
  }
}

__global__ void avg_forward_kernel(Window s, bool count_include_pad, const float* x, float* y, long long total) {
  const int out_plane = s.out_h * s.out_w;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / out_plane;
    const int r = static_cast<int>(e - p * out_plane), oh = r / s.out_w, ow = r % s.out_w;
    const float* plane = x + p * s.h * s.w;
    const int h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
    const int h_begin = max(h0, 0), h_end = min(h0 + s.kh, s.h), w_begin = max(w0, 0), w_end = min(w0 + s.kw, s.w);
    float sum = 0.0f;
    for (int ih = h_begin; ih < h_end; ++ih)
      for (int iw = w_begin; iw < w_end; ++iw) sum += plane[ih * s.w + iw];
    y[e] = sum / avg_divisor(s, count_include_pad, oh, ow);
  }
}

__global__ void avg_backward_kernel(Window s, bool count_include_pad, const float* dy, float* dx, long long total) {
  const int in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = e / in_plane;
    const int r = static_cast<int>(e - p * in_plane), ih = r / s.w, iw = r % s.w;
    const Covering rows = covering(ih, s.kh, s.stride_h, s.pad_h, s.out_h);
    const Covering columns = covering(iw, s.kw, s.stride_w, s.pad_w, s.out_w);
    const float* plane = dy + p * out_plane;
    float sum = 0.0f;
    for (int oh = rows.first; oh <= rows.last; ++oh)
      for (int ow = columns.last; ow >= columns.first; --ow)
        sum += plane[oh * s.out_w + ow] / avg_divisor(s, count_include_pad, oh, ow);
    dx[e] = sum;
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  const long long total = s.planes * s.out_h * s.out_w;
  if (total <= 0) return;
  FLEXNN_LAUNCH(max_forward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), window_of(s), x, y,
                indices, total);
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx) {
  const long long total = s.planes * s.h * s.w;
  if (total <= 0) return;
  FLEXNN_LAUNCH(max_backward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), window_of(s), dy,
                indices, dx, total);
}

void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const float* x, float* y) {
  const long long total = s.planes * s.out_h * s.out_w;
  if (total <= 0) return;
  FLEXNN_LAUNCH(avg_forward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), window_of(s),
                count_include_pad, x, y, total);
}

void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx) {
  const long long total = s.planes * s.h * s.w;
  if (total <= 0) return;
  FLEXNN_LAUNCH(avg_backward_kernel, dim3(blocks_for(total, kThreads)), dim3(kThreads), 0, stream(), window_of(s),
                count_include_pad, dy, dx, total);
}

}  // namespace flexnn::cuda
