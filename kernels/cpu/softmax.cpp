// log_softmax and cross-entropy on the CPU. Work is cut into blocks of up to kLanes adjacent lanes
// (inner positions of one outer index; a single lane when inner == 1), so strided softmaxes still
// walk memory row by row.
#include "kernels/cpu/softmax.hpp"

#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flexnn::cpu {
namespace {

constexpr int64_t kLanes = 64;
constexpr int64_t kGrainElements = 1 << 14;

// For b adjacent lanes starting at x (element d of lane j at x[d * stride + j]): each lane's max
// and log(sum(exp(x - max))), the sum accumulated in double.
void lanes_max_logsum(const float* x, int64_t dim, int64_t stride, int64_t b, float* max, float* logsum) {
  std::fill(max, max + b, -std::numeric_limits<float>::infinity());
  for (int64_t d = 0; d < dim; ++d)
    for (int64_t j = 0; j < b; ++j) max[j] = std::max(max[j], x[d * stride + j]);
  double sum[kLanes] = {};
  for (int64_t d = 0; d < dim; ++d)
    for (int64_t j = 0; j < b; ++j) sum[j] += std::exp(x[d * stride + j] - max[j]);
  for (int64_t j = 0; j < b; ++j) logsum[j] = static_cast<float>(std::log(sum[j]));
}

// Calls body(offset, b) for every block of b <= kLanes adjacent lanes, offset being the index of
// the block's first element.
template <typename Body> void over_lane_blocks(SoftmaxShape s, Body body) {
  if (s.inner == 0) return;
  const int64_t width = std::min(s.inner, kLanes);
  const int64_t blocks_per_outer = (s.inner + width - 1) / width;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, s.dim * width));
  parallel_for(0, s.outer * blocks_per_outer, grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t o = u / blocks_per_outer, first = (u % blocks_per_outer) * width;
      body(o * s.dim * s.inner + first, std::min(width, s.inner - first));
    }
  });
}

}  // namespace

void log_softmax_forward(const float* x, SoftmaxShape s, float* y) {
  over_lane_blocks(s, [&](int64_t offset, int64_t b) {
    float max[kLanes], logsum[kLanes];
    lanes_max_logsum(x + offset, s.dim, s.inner, b, max, logsum);
    for (int64_t d = 0; d < s.dim; ++d) {
      const float* xd = x + offset + d * s.inner;
      float* yd = y + offset + d * s.inner;
      for (int64_t j = 0; j < b; ++j) yd[j] = (xd[j] - max[j]) - logsum[j];
    }
  });
}

void log_softmax_backward(const float* dy, const float* y, SoftmaxShape s, float* dx) {
  over_lane_blocks(s, [&](int64_t offset, int64_t b) {
    double sum[kLanes] = {};
    for (int64_t d = 0; d < s.dim; ++d)
      for (int64_t j = 0; j < b; ++j) sum[j] += dy[offset + d * s.inner + j];
    float total[kLanes];
    for (int64_t j = 0; j < b; ++j) total[j] = static_cast<float>(sum[j]);
    for (int64_t d = 0; d < s.dim; ++d) {
      const int64_t at = offset + d * s.inner;
      for (int64_t j = 0; j < b; ++j) dx[at + j] = dy[at + j] - std::exp(y[at + j]) * total[j];
    }
  });
}

double cross_entropy_forward(const float* logits, const int64_t* targets, int64_t n, int64_t c, float* row_max,
                             float* row_logsum) {
  parallel_for(0, n, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, c)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) lanes_max_logsum(logits + r * c, c, 1, 1, row_max + r, row_logsum + r);
  });
  double total = 0;
  for (int64_t r = 0; r < n; ++r)
    total += (static_cast<double>(row_max[r]) - logits[r * c + targets[r]]) + row_logsum[r];
  return total / static_cast<double>(n);
}

void cross_entropy_backward(const float* logits, const int64_t* targets, const float* row_max,
                            const float* row_logsum, int64_t n, int64_t c, float scale, float* dlogits) {
  parallel_for(0, n, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, c)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = logits + r * c;
      float* dx = dlogits + r * c;
      const float max = row_max[r], logsum = row_logsum[r];
      const int64_t target = targets[r];
      for (int64_t k = 0; k < c; ++k)
        dx[k] = scale * (std::exp((x[k] - max) - logsum) - (k == target ? 1.0f : 0.0f));
    }
  });
}

}  // namespace flexnn::cpu
