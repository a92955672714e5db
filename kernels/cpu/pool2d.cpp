// Max and average pooling, one output row at a time: for each window row and kernel column, one
// pass over the output columns whose tap lies inside the input (branch-free, vectorisable), so
// every window is still visited in row-major order, as torch does. Planes spread over the pool.
// The max forward keeps the winning position so that its backward is a scatter.
#include "kernels/cpu/pool2d.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/cpu/conv2d.hpp"
#include "kernels/cpu/parallel.hpp"

namespace flexnn::cpu {
namespace {

// Floor division for a positive divisor.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The input rows [begin, end) of output row oh's windows.
TapSpan window_rows(const Pool2dShape& s, int64_t oh) {
  const int64_t h0 = oh * s.stride_h - s.pad_h;
  return {std::max<int64_t>(h0, 0), std::min(h0 + s.kh, s.h)};
}

// Calls tap(kj, columns, shift) for each kernel column: output columns ow in `columns` read input
// column ow * stride_w + shift of a window row.
template <typename F>
void for_each_tap(const Pool2dShape& s, F tap) {
  for (int64_t kj = 0; kj < s.kw; ++kj) tap(tap_span(s.out_w, s.w, s.stride_w, s.pad_w, kj), kj - s.pad_w);
}

// One kernel tap over an output row: window maxima best[ow] (positions at[ow]) take row[iw],
// iw = ow * stride + shift, where it is larger or a NaN (a NaN wins, as in torch). Branch-free.
void max_tap(const float* __restrict row, TapSpan columns, int64_t stride, int64_t shift, int64_t row_start,
             float* __restrict best, int64_t* __restrict at) {
  for (int64_t ow = columns.begin; ow < columns.end; ++ow) {
    const int64_t iw = ow * stride + shift;
    const float v = row[iw], b = best[ow];
    const bool take = (v > b) | (v != v);
    best[ow] = take ? v : b;
    at[ow] = take ? row_start + iw : at[ow];
  }
}

// One kernel tap over an output row: sum[ow] += row[ow * stride + shift].
void sum_tap(const float* __restrict row, TapSpan columns, int64_t stride, int64_t shift, float* __restrict sum) {
  for (int64_t ow = columns.begin; ow < columns.end; ++ow) sum[ow] += row[ow * stride + shift];
}

// One kernel tap over an output row, the adjoint of sum_tap: row[ow * stride + shift] += share[ow].
void spread_tap(const float* __restrict share, TapSpan columns, int64_t stride, int64_t shift, float* __restrict row) {
  for (int64_t ow = columns.begin; ow < columns.end; ++ow) row[ow * stride + shift] += share[ow];
}

// torch's average divisor for output (oh, ow): the window's size within the padded input (a
// window pushed past it by ceil_mode is cut there), or within the input itself.
float avg_divisor(const Pool2dShape& s, bool count_include_pad, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
  const int64_t h1 = std::min(h0 + s.kh, s.h + s.pad_h), w1 = std::min(w0 + s.kw, s.w + s.pad_w);
  if (count_include_pad) return static_cast<float>((h1 - h0) * (w1 - w0));
  return static_cast<float>((std::min(h1, s.h) - std::max<int64_t>(h0, 0)) *
                            (std::min(w1, s.w) - std::max<int64_t>(w0, 0)));
}

// Calls body(plane) for every plane, in chunks of about the same work.
void for_each_plane(const Pool2dShape& s, const std::function<void(int64_t)>& body) {
  const int64_t work = std::max<int64_t>(1, s.out_h * s.out_w * s.kh * s.kw + s.h * s.w);
  parallel_for(0, s.planes, std::max<int64_t>(1, (int64_t{1} << 15) / work), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) body(p);
  });
}

// A per-thread row of the given type, at least `size` long.
template <typename T>
T* scratch_row(int64_t size) {
  thread_local std::vector<T> row;
  if (static_cast<int64_t>(row.size()) < size) row.resize(size);
  return row.data();
}

// Max pooling of one plane in two passes, for windows that overlap vertically (kh > stride_h):
// each input row's maxima over the kernel's columns once, then the maxima of those over the
// kernel's rows. Taking a row's value only when strictly larger (or NaN) keeps torch's choice:
// the first maximum in row-major window order, the last NaN.
void max_pool2d_plane_separable(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  const int64_t out_w = s.out_w, w = s.w;  // locals, so that stores cannot change the trip counts
  float* row_max = scratch_row<float>(s.h * out_w);
  int64_t* row_at = scratch_row<int64_t>(s.h * out_w + out_w);  // + a row of indices if none given
  for (int64_t ih = 0; ih < s.h; ++ih) {
    float* best = row_max + ih * out_w;
    int64_t* at = row_at + ih * out_w;
    for (int64_t ow = 0; ow < out_w; ++ow) {
      best[ow] = -std::numeric_limits<float>::infinity();
      at[ow] = std::max<int64_t>(ow * s.stride_w - s.pad_w, 0);
    }
    for_each_tap(s, [&](TapSpan columns, int64_t shift) { max_tap(x + ih * w, columns, s.stride_w, shift, 0, best, at); });
  }
  for (int64_t oh = 0; oh < s.out_h; ++oh) {
    float* __restrict best = y + oh * out_w;
    int64_t* __restrict at = indices != nullptr ? indices + oh * out_w : row_at + s.h * out_w;
    const TapSpan rows = window_rows(s, oh);
    for (int64_t ow = 0; ow < out_w; ++ow) {
      best[ow] = -std::numeric_limits<float>::infinity();
      at[ow] = rows.begin * w + row_at[rows.begin * out_w + ow];
    }
    for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
      const float* __restrict candidate = row_max + ih * out_w;
      const int64_t* __restrict column = row_at + ih * out_w;
      const int64_t row_start = ih * w;
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const float v = candidate[ow], b = best[ow];
        const bool take = (v > b) | (v != v);
        best[ow] = take ? v : b;
        at[ow] = take ? row_start + column[ow] : at[ow];
      }
    }
  }
}

}  // namespace

int64_t pool_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - k + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

void max_pool2d_plane(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  if (s.kh > s.stride_h) return max_pool2d_plane_separable(s, x, y, indices);
  for (int64_t oh = 0; oh < s.out_h; ++oh) {
    float* best = y + oh * s.out_w;
    int64_t* at = indices != nullptr ? indices + oh * s.out_w : scratch_row<int64_t>(s.out_w);
    const TapSpan rows = window_rows(s, oh);
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      best[ow] = -std::numeric_limits<float>::infinity();
      at[ow] = rows.begin * s.w + std::max<int64_t>(ow * s.stride_w - s.pad_w, 0);
    }
    for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
      for_each_tap(s, [&](TapSpan columns, int64_t shift) {
        max_tap(x + ih * s.w, columns, s.stride_w, shift, ih * s.w, best, at);
      });
    }
  }
}

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    max_pool2d_plane(s, x + p * in_plane, y + p * out_plane, indices != nullptr ? indices + p * out_plane : nullptr);
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx) {
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    float* dxp = dx + p * in_plane;
    std::fill(dxp, dxp + in_plane, 0.0f);
    for (int64_t o = p * out_plane; o < (p + 1) * out_plane; ++o) dxp[indices[o]] += dy[o];
  });
}

void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, const float* x, float* y) {
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    const float* xp = x + p * in_plane;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      float* sum = y + p * out_plane + oh * s.out_w;
      std::fill(sum, sum + s.out_w, 0.0f);
      const TapSpan rows = window_rows(s, oh);
      for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
        for_each_tap(s,
                     [&](TapSpan columns, int64_t shift) { sum_tap(xp + ih * s.w, columns, s.stride_w, shift, sum); });
      }
      for (int64_t ow = 0; ow < s.out_w; ++ow) sum[ow] /= avg_divisor(s, count_include_pad, oh, ow);
    }
  });
}

void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx) {
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    float* dxp = dx + p * in_plane;
    std::fill(dxp, dxp + in_plane, 0.0f);
    float* share = scratch_row<float>(s.out_w);
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const float* dyr = dy + p * out_plane + oh * s.out_w;
      for (int64_t ow = 0; ow < s.out_w; ++ow) share[ow] = dyr[ow] / avg_divisor(s, count_include_pad, oh, ow);
      const TapSpan rows = window_rows(s, oh);
      for (int64_t ih = rows.begin; ih < rows.end; ++ih) {
        for_each_tap(
            s, [&](TapSpan columns, int64_t shift) { spread_tap(share, columns, s.stride_w, shift, dxp + ih * s.w); });
      }
    }
  });
}

}  // namespace flexnn::cpu
