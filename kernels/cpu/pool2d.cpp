// Max and average pooling: one pass per output over its window, planes spread over the pool.
// The max forward keeps the winning position so the backward is a scatter; the average
// backward spreads each gradient over the window with the forward's divisor.
#include "kernels/cpu/pool2d.hpp"

#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

namespace flexnn::cpu {
namespace {

// Floor division for a positive divisor.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// One output's window clipped to the input: rows [h0, h1), columns [w0, w1); `padded_size` is
// its size before clipping, counting padding but not what lies past the right / bottom padding.
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t padded_size;
};

Window window(const Pool2dShape& s, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
  const int64_t h1 = std::min(h0 + s.kh, s.h + s.pad_h), w1 = std::min(w0 + s.kw, s.w + s.pad_w);
  return {std::max<int64_t>(h0, 0), std::min(h1, s.h), std::max<int64_t>(w0, 0), std::min(w1, s.w),
          (h1 - h0) * (w1 - w0)};
}

float avg_divisor(const Window& win, bool count_include_pad) {
  return static_cast<float>(count_include_pad ? win.padded_size : (win.h1 - win.h0) * (win.w1 - win.w0));
}

// Calls body(plane) for every plane, in chunks of about the same work.
void for_each_plane(const Pool2dShape& s, const std::function<void(int64_t)>& body) {
  const int64_t work = std::max<int64_t>(1, s.out_h * s.out_w * s.kh * s.kw + s.h * s.w);
  parallel_for(0, s.planes, std::max<int64_t>(1, (int64_t{1} << 15) / work), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) body(p);
  });
}

}  // namespace

int64_t pool_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - k + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    const float* xp = x + p * in_plane;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const Window win = window(s, oh, ow);
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = win.h0 * s.w + win.w0;
        for (int64_t ih = win.h0; ih < win.h1; ++ih) {
          for (int64_t iw = win.w0; iw < win.w1; ++iw) {
            const float v = xp[ih * s.w + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              best_index = ih * s.w + iw;
            }
          }
        }
        const int64_t o = p * out_plane + oh * s.out_w + ow;
        y[o] = best;
        if (indices != nullptr) indices[o] = best_index;
      }
    }
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
    float* yp = y + p * out_plane;
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const Window win = window(s, oh, ow);
        float sum = 0.0f;
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) sum += xp[ih * s.w + iw];
        yp[oh * s.out_w + ow] = sum / avg_divisor(win, count_include_pad);
      }
    }
  });
}

void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, const float* dy, float* dx) {
  const int64_t in_plane = s.h * s.w, out_plane = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    const float* dyp = dy + p * out_plane;
    float* dxp = dx + p * in_plane;
    std::fill(dxp, dxp + in_plane, 0.0f);
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const Window win = window(s, oh, ow);
        const float share = dyp[oh * s.out_w + ow] / avg_divisor(win, count_include_pad);
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) dxp[ih * s.w + iw] += share;
      }
    }
  });
}

}  // namespace flexnn::cpu
