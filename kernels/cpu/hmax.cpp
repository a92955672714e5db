// HMAX's kernels. Every sum runs in a fixed order inside one task (S2: one image, or one
// prototype; Toeplitz: one output channel's rows), so results do not depend on the threads.
#include "kernels/cpu/hmax.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "kernels/cpu/parallel.hpp"

namespace flexnn::cpu {
namespace {

// For output position o along one axis: the input positions [begin, end) its window reads, and
// the tap that reads input position i is i - first.
struct AxisWindow {
  int64_t first, begin, end;
};

AxisWindow axis_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t extent) {
  const int64_t first = o * stride - pad;
  return {first, std::max<int64_t>(first, 0), std::min(first + kernel, extent)};
}

// Calls visit(row, weight_offset, input_offset, length) for each run of taps of output channel
// co: `length` consecutive weight elements from weight_offset meet consecutive input positions
// from input_offset, in row `row` of M.
template <typename Visit>
void for_each_run(const Conv2dShape& s, int64_t co, Visit&& visit) {
  const int64_t in_plane = s.h * s.w;
  for (int64_t oh = 0; oh < s.out_h; ++oh) {
    const AxisWindow r = axis_window(oh, s.stride_h, s.pad_h, s.kh, s.h);
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      const AxisWindow c = axis_window(ow, s.stride_w, s.pad_w, s.kw, s.w);
      const int64_t row = (co * s.out_h + oh) * s.out_w + ow;
      if (c.end <= c.begin) continue;
      for (int64_t ci = 0; ci < s.c_in; ++ci)
        for (int64_t ih = r.begin; ih < r.end; ++ih)
          visit(row, ((co * s.c_in + ci) * s.kh + ih - r.first) * s.kw + c.begin - c.first,
                ci * in_plane + ih * s.w + c.begin, c.end - c.begin);
    }
  }
}


// Calls body(begin, end) over [0, count) in chunks of about 2^15 elements of work each.
void for_rows(int64_t count, int64_t row_work, const std::function<void(int64_t, int64_t)>& body) {
  parallel_for(0, count, std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(row_work, 1)), body);
}

// dweight_sq[p] = the sum over images n and positions i < used of e[(n * p_count + p) * row + i].
void sum_per_prototype(const S2Shape& s, const float* e, int64_t row, int64_t used, float* dweight_sq) {
  for_rows(s.p, s.n * used, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      double total = 0;
      for (int64_t n = 0; n < s.n; ++n) {
        const float* r = e + (n * s.p + p) * row;
        for (int64_t i = 0; i < used; ++i) total += r[i];
      }
      dweight_sq[p] = static_cast<float>(total);
    }
  });
}

}  // namespace

void hmax_s2_forward(const S2Shape& s, float coef, const float* cross, const float* patch_sq, const float* weight_sq,
                     float* y) {
  for_rows(s.n * s.p, s.plane, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* c = cross + r * s.plane;
      const float* q = patch_sq + (r / s.p) * s.plane;
      const float w = weight_sq[r % s.p];
      float* out = y + r * s.plane;
      for (int64_t i = 0; i < s.plane; ++i) out[i] = std::exp(coef * (q[i] - 2.0f * c[i] + w));
    }
  });
}

void hmax_s2_backward(const S2Shape& s, float coef, const float* y, const float* dy, float* dcross, float* dpatch_sq,
                      float* dweight_sq) {
  // e = coef dy y, kept in dcross's place (scaled by -2 at the end) or a scratch when dcross is not wanted.
  std::vector<float> scratch;
  float* e = dcross;
  if (e == nullptr) {
    scratch.resize(static_cast<size_t>(s.n * s.p * s.plane));
    e = scratch.data();
  }
  for_rows(s.n, s.p * s.plane, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const int64_t at = n * s.p * s.plane;
      for (int64_t i = 0; i < s.p * s.plane; ++i) e[at + i] = coef * dy[at + i] * y[at + i];
      if (dpatch_sq == nullptr) continue;
      float* q = dpatch_sq + n * s.plane;
      std::fill(q, q + s.plane, 0.0f);
      for (int64_t p = 0; p < s.p; ++p)
        for (int64_t i = 0; i < s.plane; ++i) q[i] += e[at + p * s.plane + i];
    }
  });
  if (dweight_sq != nullptr) sum_per_prototype(s, e, s.plane, s.plane, dweight_sq);
  if (dcross != nullptr)
    for_rows(s.n * s.p, s.plane, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * s.plane; i < r1 * s.plane; ++i) dcross[i] *= -2.0f;
    });
}

void hmax_s2_max_forward(const S2Shape& s, float coef, const float* cross, const float* patch_sq,
                         const float* weight_sq, float* y, int64_t* at) {
  for_rows(s.n * s.p, s.plane, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* c = cross + r * s.plane;
      const float* q = patch_sq + (r / s.p) * s.plane;
      int64_t best = 0;
      float least = q[0] - 2.0f * c[0];
      for (int64_t i = 1; i < s.plane; ++i) {
        const float d = q[i] - 2.0f * c[i];
        if (d < least) least = d, best = i;
      }
      y[r] = std::exp(coef * (least + weight_sq[r % s.p]));
      at[r] = best;
    }
  });
}

void hmax_s2_max_backward(const S2Shape& s, float coef, const float* y, const int64_t* at, const float* dy,
                          float* dcross, float* dpatch_sq, float* dweight_sq) {
  for_rows(s.n, s.p * s.plane, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      if (dcross != nullptr) std::fill(dcross + n * s.p * s.plane, dcross + (n + 1) * s.p * s.plane, 0.0f);
      if (dpatch_sq != nullptr) std::fill(dpatch_sq + n * s.plane, dpatch_sq + (n + 1) * s.plane, 0.0f);
      for (int64_t p = 0; p < s.p; ++p) {
        const int64_t r = n * s.p + p;
        const float e = coef * dy[r] * y[r];
        if (dcross != nullptr) dcross[r * s.plane + at[r]] = -2.0f * e;
        if (dpatch_sq != nullptr) dpatch_sq[n * s.plane + at[r]] += e;
      }
    }
  });
  if (dweight_sq == nullptr) return;
  std::vector<float> e(static_cast<size_t>(s.n * s.p));
  for (int64_t r = 0; r < s.n * s.p; ++r) e[r] = coef * dy[r] * y[r];
  sum_per_prototype(s, e.data(), 1, 1, dweight_sq);
}

void toeplitz_expand(const Conv2dShape& s, const float* weight, float* m) {
  const int64_t k = s.c_in * s.h * s.w, rows = s.out_h * s.out_w;
  parallel_for(0, s.c_out, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t co = c0; co < c1; ++co) {
      std::fill(m + co * rows * k, m + (co + 1) * rows * k, 0.0f);
      for_each_run(s, co, [&](int64_t row, int64_t w_at, int64_t x_at, int64_t length) {
        std::copy(weight + w_at, weight + w_at + length, m + row * k + x_at);
      });
    }
  });
}

void toeplitz_fold(const Conv2dShape& s, const float* dm, float* dweight) {
  const int64_t k = s.c_in * s.h * s.w, taps = s.c_in * s.kh * s.kw;
  parallel_for(0, s.c_out, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t co = c0; co < c1; ++co) {
      std::fill(dweight + co * taps, dweight + (co + 1) * taps, 0.0f);
      for_each_run(s, co, [&](int64_t row, int64_t w_at, int64_t x_at, int64_t length) {
        const float* src = dm + row * k + x_at;
        float* dst = dweight + w_at;
        for (int64_t i = 0; i < length; ++i) dst[i] += src[i];
      });
    }
  });
}

}  // namespace flexnn::cpu
