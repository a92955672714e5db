// Batch normalisation on [n, c, hw]: statistics and backward sums run over chunks of channels
// (each chunk owns its channels' results), the element-wise passes over chunks of (n, c) rows.
// Every loop nest is compiled twice, for a runtime hw and for hw == 1 ([N, C] inputs), where the
// loops over channels vectorise.
#include "kernels/cpu/batch_norm.hpp"

#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace flexnn::cpu {
namespace {

constexpr int64_t kGrainElements = 1 << 15;

// Runs body(hw): a compile-time 1 for [N, C] inputs, else the runtime row length.
template <typename Body> void with_row_length(int64_t hw, Body body) {
  if (hw == 1) {
    body(std::integral_constant<int64_t, 1>{});
  } else {
    body(hw);
  }
}

// Sum of f(j) for j in [0, len), in double; from eight values on over eight interleaved lanes
// combined in a fixed order, so it vectorises. The rounding depends only on len.
template <typename F> double lane_sum(int64_t len, F f) {
  if (len < 8) {
    double sum = 0;
    for (int64_t j = 0; j < len; ++j) sum += f(j);
    return sum;
  }
  double acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; ++k) acc[k] += f(j + k);
  for (; j < len; ++j) acc[0] += f(j);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Calls body(c_begin, c_end, sums) over chunks of channels, sums being zeroed double scratch of
// `per_channel` values for each channel of the chunk.
template <typename Body> void over_channel_chunks(BatchNormShape s, int per_channel, Body body) {
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, s.n * s.hw));
  parallel_for(0, s.c, grain, [&](int64_t c0, int64_t c1) {
    std::vector<double> sums(static_cast<size_t>((c1 - c0) * per_channel), 0.0);
    body(c0, c1, sums.data());
  });
}

// Calls row(r, c) for each of the n * c rows of hw elements (r = n * s.c + c), over chunks of rows;
// within a chunk, runs of consecutive channels of one n.
template <typename Row> void over_rows(BatchNormShape s, Row row) {
  parallel_for(0, s.n * s.c, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, s.hw)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1;) {
                   const int64_t base = r - r % s.c, c_begin = r % s.c, c_end = std::min(s.c, c_begin + (r1 - r));
                   for (int64_t c = c_begin; c < c_end; ++c) row(base + c, c);
                   r += c_end - c_begin;
                 }
               });
}

}  // namespace

void batch_norm_stats(const float* x, BatchNormShape s, float eps, float momentum, float* mean, float* invstd,
                      float* running_mean, float* running_var) {
  const double count = static_cast<double>(s.n * s.hw);
  with_row_length(s.hw, [&](auto hw) {
    over_channel_chunks(s, 2, [&](int64_t c0, int64_t c1, double* sums) {
      double* total = sums;
      double* squares = sums + (c1 - c0);
      for (int64_t n = 0; n < s.n; ++n)
        for (int64_t c = c0; c < c1; ++c) {
          const float* row = x + (n * s.c + c) * hw;
          total[c - c0] += lane_sum(hw, [&](int64_t j) { return static_cast<double>(row[j]); });
        }
      for (int64_t c = c0; c < c1; ++c) total[c - c0] /= count;
      for (int64_t n = 0; n < s.n; ++n)
        for (int64_t c = c0; c < c1; ++c) {
          const float* row = x + (n * s.c + c) * hw;
          const double mu = total[c - c0];
          squares[c - c0] += lane_sum(hw, [&](int64_t j) {
            const double d = static_cast<double>(row[j]) - mu;
            return d * d;
          });
        }
      for (int64_t c = c0; c < c1; ++c) {
        const double mu = total[c - c0], var = squares[c - c0] / count;
        mean[c] = static_cast<float>(mu);
        invstd[c] = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
        if (running_mean != nullptr) {
          running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
          running_var[c] =
              static_cast<float>((1.0 - momentum) * running_var[c] + momentum * squares[c - c0] / (count - 1.0));
        }
      }
    });
  });
}

void batch_norm_invstd(const float* var, int64_t c, float eps, float* invstd) {
  for (int64_t i = 0; i < c; ++i)
    invstd[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[i]) + static_cast<double>(eps)));
}

void batch_norm_forward(const float* x, const float* mean, const float* invstd, const float* weight,
                        const float* bias, BatchNormShape s, float* y) {
  with_row_length(s.hw, [&](auto hw) {
    over_rows(s, [&](int64_t r, int64_t c) {
      const float mu = mean[c], scale = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
      const float shift = bias != nullptr ? bias[c] : 0.0f;
      for (int64_t j = 0; j < hw; ++j) y[r * hw + j] = (x[r * hw + j] - mu) * scale + shift;
    });
  });
}

void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* weight, BatchNormShape s, bool batch_stats, float* dx, float* dweight,
                         float* dbias) {
  const double count = static_cast<double>(s.n * s.hw);
  // Per channel: dx = scale * (dy - dy_mean - (x - mean) * x_coef).
  std::vector<float> coefs(static_cast<size_t>(3 * s.c));
  float* scale = coefs.data();
  float* dy_mean = scale + s.c;
  float* x_coef = dy_mean + s.c;
  const bool need_sums = batch_stats || dweight != nullptr || dbias != nullptr;
  with_row_length(s.hw, [&](auto hw) {
    over_channel_chunks(s, 2, [&](int64_t c0, int64_t c1, double* sums) {
      double* sum_dy = sums;
      double* sum_dy_xc = sums + (c1 - c0);  // sum of dy * (x - mean)
      for (int64_t n = 0; n < (need_sums ? s.n : 0); ++n)
        for (int64_t c = c0; c < c1; ++c) {
          const float* dyr = dy + (n * s.c + c) * hw;
          const float* xr = x + (n * s.c + c) * hw;
          const double mu = mean[c];
          sum_dy[c - c0] += lane_sum(hw, [&](int64_t j) { return static_cast<double>(dyr[j]); });
          sum_dy_xc[c - c0] += lane_sum(
              hw, [&](int64_t j) { return static_cast<double>(dyr[j]) * (static_cast<double>(xr[j]) - mu); });
        }
      for (int64_t c = c0; c < c1; ++c) {
        const double sdy = sum_dy[c - c0], sdy_xhat = sum_dy_xc[c - c0] * invstd[c];
        if (dbias != nullptr) dbias[c] = static_cast<float>(sdy);
        if (dweight != nullptr) dweight[c] = static_cast<float>(sdy_xhat);
        scale[c] = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
        dy_mean[c] = batch_stats ? static_cast<float>(sdy / count) : 0.0f;
        x_coef[c] = batch_stats ? static_cast<float>(sdy_xhat * invstd[c] / count) : 0.0f;
      }
    });
    if (dx == nullptr) return;
    over_rows(s, [&](int64_t r, int64_t c) {
      const float mu = mean[c], k = scale[c], dm = dy_mean[c], xk = x_coef[c];
      for (int64_t j = 0; j < hw; ++j) dx[r * hw + j] = k * (dy[r * hw + j] - dm - (x[r * hw + j] - mu) * xk);
    });
  });
}

}  // namespace flexnn::cpu
