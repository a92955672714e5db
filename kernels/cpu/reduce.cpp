// Axis reductions: parallel over outer rows (or over inner blocks when there is one outer row).
#include "kernels/cpu/reduce.hpp"

#include "kernels/cpu/parallel.hpp"

#include <algorithm>
#include <vector>

namespace flexnn::cpu {
namespace {

constexpr int64_t kInnerBlock = 256;
constexpr int64_t kContiguousBlock = 4096;

// Sums n contiguous floats: float sums over fixed blocks, combined in double.
double contiguous_sum(const float* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kContiguousBlock) {
    const int64_t e = std::min(n, b + kContiguousBlock);
    double block = 0;
    for (int64_t i = b; i < e; ++i) block += x[i];
    total += block;
  }
  return total;
}

// Calls body(o, i0, i1) over the (outer row, inner block) work items in fixed chunks.
template <typename F>
void for_each_block(ReduceShape s, F body) {
  const int64_t blocks = (s.inner + kInnerBlock - 1) / kInnerBlock;
  const int64_t work = std::max<int64_t>(1, s.reduced * std::min(s.inner, kInnerBlock));
  parallel_for(0, s.outer * blocks, std::max<int64_t>(1, (1 << 15) / work), [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t o = w / blocks, i0 = (w % blocks) * kInnerBlock;
      body(o, i0, std::min(s.inner, i0 + kInnerBlock));
    }
  });
}

}  // namespace

void sum_axis(const float* x, float* out, ReduceShape s) {
  if (s.inner == 1) {
    parallel_for(0, s.outer, std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(1, s.reduced)),
                 [&](int64_t o0, int64_t o1) {
                   for (int64_t o = o0; o < o1; ++o) out[o] = static_cast<float>(contiguous_sum(x + o * s.reduced, s.reduced));
                 });
    return;
  }
  for_each_block(s, [&](int64_t o, int64_t i0, int64_t i1) {
    double acc[kInnerBlock] = {};
    const float* base = x + o * s.reduced * s.inner;
    for (int64_t r = 0; r < s.reduced; ++r) {
      const float* row = base + r * s.inner;
      for (int64_t i = i0; i < i1; ++i) acc[i - i0] += row[i];
    }
    for (int64_t i = i0; i < i1; ++i) out[o * s.inner + i] = static_cast<float>(acc[i - i0]);
  });
}

void max_axis(const float* x, float* out, int64_t* index, ReduceShape s) {
  for_each_block(s, [&](int64_t o, int64_t i0, int64_t i1) {
    const float* base = x + o * s.reduced * s.inner;
    for (int64_t i = i0; i < i1; ++i) {
      float best = base[i];
      int64_t best_r = 0;
      for (int64_t r = 1; r < s.reduced && best == best; ++r) {
        const float v = base[r * s.inner + i];
        if (v > best || v != v) best = v, best_r = r;
      }
      out[o * s.inner + i] = best;
      index[o * s.inner + i] = best_r;
    }
  });
}

void expand_axis(const float* dy, float* dx, ReduceShape s) {
  for_each_block(s, [&](int64_t o, int64_t i0, int64_t i1) {
    for (int64_t r = 0; r < s.reduced; ++r) {
      float* row = dx + (o * s.reduced + r) * s.inner;
      for (int64_t i = i0; i < i1; ++i) row[i] = dy[o * s.inner + i];
    }
  });
}

void max_axis_backward(const float* dy, const int64_t* index, float* dx, ReduceShape s) {
  for_each_block(s, [&](int64_t o, int64_t i0, int64_t i1) {
    for (int64_t r = 0; r < s.reduced; ++r) {
      float* row = dx + (o * s.reduced + r) * s.inner;
      for (int64_t i = i0; i < i1; ++i) row[i] = index[o * s.inner + i] == r ? dy[o * s.inner + i] : 0.0f;
    }
  });
}

}  // namespace flexnn::cpu
