// The flexible layer on the CPU. Work is split over (image, pooled plane) units: a unit pools one
// plane of x once and serves every output channel that reads it (one channel, or all of them
// when a 1-channel input is broadcast). The gate arithmetic is one branch-free loop per plane,
// vectorised (OpenMP SIMD pragmas, -fopenmp-simd: no threads), exp() included (exp_nonpositive).
#include "kernels/cpu/flexible.hpp"

#include "kernels/cpu/parallel.hpp"
#include "kernels/philox.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <vector>

namespace flexnn::cpu {
namespace {

// exp(x) for x <= 0, Cephes' single-precision polynomial (within 2 ulp of std::exp), inline and
// branch-free so that it vectorises and gives the same bits for every element whatever the
// thread or alignment. Below −87 it returns exp(−87) ≈ 1.6e-38 instead of a denormal or zero.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  const float v = x * 1.44269504088896341f + 0.5f;
  int32_t whole = static_cast<int32_t>(v);           // truncation toward zero,
  whole -= static_cast<float>(whole) > v;             // then floor (std::floor does not vectorise)
  const float n = static_cast<float>(whole);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((whole + 127) << 23);
}

// The soft gate of one unit: z = scale·(t − m); σ(z) and σ(−z), both from e = exp(−|z|), so
// neither cancels when the gate saturates; pool when z > 0.
struct Gate {
  float g, g_not;
};

// a where `take`, else b, without a branch (bitwise), so that loops using it vectorise.
inline float select(bool take, float a, float b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(take);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & mask) | (std::bit_cast<uint32_t>(b) & ~mask));
}

inline Gate soft_gate(float scale, float t, float m) {
  const float z = scale * (t - m);
  const float e = exp_nonpositive(-std::abs(z));
  const float high = 1.0f / (1.0f + e), low = e * high;  // σ(|z|), σ(−|z|)
  const bool pool = z > 0.0f;
  return {select(pool, high, low), select(pool, low, high)};
}

// ±sharpness: the gate's z = scale·(T − m).
float gate_scale(FlexGate gate, float sharpness) { return gate == FlexGate::threshold ? sharpness : -sharpness; }

// A per-thread scratch plane for slot `slot`, at least `size` long.
float* scratch(int slot, int64_t size) {
  thread_local std::vector<float> buffers[3];
  std::vector<float>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < size) b.resize(size);
  return b.data();
}

// Calls body(image, pooled plane, first channel, channel count) for every unit, in parallel.
template <typename Body>
void for_each_unit(const FlexibleShape& s, Body body) {
  const int64_t per_unit = s.pool_channels == s.channels ? 1 : s.channels;
  const int64_t work = per_unit * s.h * s.w * 8 + s.h * s.w * s.pool.kh * s.pool.kw;
  parallel_for(0, s.n * s.pool_channels, std::max<int64_t>(1, (int64_t{1} << 16) / work),
               [&](int64_t begin, int64_t end) {
                 for (int64_t u = begin; u < end; ++u) {
                   const int64_t p = u % s.pool_channels;
                   body(u / s.pool_channels, p, per_unit == 1 ? p : 0, per_unit);
                 }
               });
}

// y = the blend of one plane; returns the number of units that took the pool branch.
int64_t blend_plane(FlexGate gate, float scale, int64_t size, const float* __restrict t, const float* __restrict m,
                    const float* __restrict c, float* __restrict y) {
  int64_t pool = 0;
  if (gate == FlexGate::mask) {
    for (int64_t k = 0; k < size; ++k) {
      y[k] = t[k] * m[k] + (1.0f - t[k]) * c[k];
      pool += t[k] > 0.5f;
    }
    return pool;
  }
#pragma omp simd reduction(+ : pool)
  for (int64_t k = 0; k < size; ++k) {
    const Gate g = soft_gate(scale, t[k], m[k]);
    pool += scale * (t[k] - m[k]) > 0.0f;
    y[k] = g.g * m[k] + g.g_not * c[k];
  }
  return pool;
}

// The gradients of one plane: dc, the pool value's gradient added into dm, and (threshold gates)
// the threshold's into dt.
void blend_plane_backward(FlexGate gate, float scale, int64_t size, const float* __restrict t,
                          const float* __restrict m, const float* __restrict c, const float* __restrict dy,
                          float* __restrict dc, float* __restrict dm, float* __restrict dt) {
  if (gate == FlexGate::mask) {
    for (int64_t k = 0; k < size; ++k) {
      dc[k] = dy[k] * (1.0f - t[k]);
      dm[k] += dy[k] * t[k];
    }
    return;
  }
#pragma omp simd
  for (int64_t k = 0; k < size; ++k) {
    const Gate g = soft_gate(scale, t[k], m[k]);
    const float d_threshold = scale * dy[k] * g.g * g.g_not * (m[k] - c[k]);  // ∂g/∂T = scale·g·(1 − g)
    dc[k] = dy[k] * g.g_not;
    dm[k] += dy[k] * g.g - d_threshold;  // ∂g/∂m = −∂g/∂T
    dt[k] = d_threshold;
  }
}

}  // namespace

void flexible_forward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                      const float* gate_values, float* y, int64_t* argmax, int64_t* pool_units) {
  const int64_t plane = s.h * s.w, in_plane = s.pool.h * s.pool.w;
  const float scale = gate_scale(gate, sharpness);
  std::atomic<int64_t> taken{0};
  for_each_unit(s, [&](int64_t i, int64_t p, int64_t first, int64_t count) {
    const int64_t u = i * s.pool_channels + p;
    float* m = scratch(0, plane);
    max_pool2d_plane(s.pool, x + u * in_plane, m, argmax != nullptr ? argmax + u * plane : nullptr);
    int64_t local = 0;
    for (int64_t co = first; co < first + count; ++co) {
      const int64_t o = (i * s.channels + co) * plane;
      local += blend_plane(gate, scale, plane, gate_values + co * plane, m, c + o, y + o);
    }
    taken += local;
  });
  if (pool_units != nullptr) *pool_units = taken;
}

void flexible_backward(const FlexibleShape& s, FlexGate gate, float sharpness, const float* x, const float* c,
                       const float* gate_values, const int64_t* argmax, const float* dy, float* dc, float* dx,
                       float* dgate, float* workspace) {
  const int64_t plane = s.h * s.w, in_plane = s.pool.h * s.pool.w;
  const float scale = gate_scale(gate, sharpness);
  for_each_unit(s, [&](int64_t i, int64_t p, int64_t first, int64_t count) {
    const int64_t u = i * s.pool_channels + p;
    const float* xp = x + u * in_plane;
    const int64_t* at = argmax + u * plane;
    float* m = scratch(0, plane);
    float* dm = scratch(1, plane);
    float* unused_dt = dgate != nullptr ? nullptr : scratch(2, plane);  // a sink when T needs no gradient
    for (int64_t k = 0; k < plane; ++k) m[k] = xp[at[k]];
    std::fill(dm, dm + plane, 0.0f);
    for (int64_t co = first; co < first + count; ++co) {
      const int64_t o = (i * s.channels + co) * plane;
      blend_plane_backward(gate, scale, plane, gate_values + co * plane, m, c + o, dy + o, dc + o, dm,
                           dgate != nullptr ? workspace + o : unused_dt);
    }
    if (dx != nullptr) {
      float* dxp = dx + u * in_plane;
      std::fill(dxp, dxp + in_plane, 0.0f);
      for (int64_t k = 0; k < plane; ++k) dxp[at[k]] += dm[k];
    }
  });
  if (dgate == nullptr) return;
  const int64_t units = s.channels * plane;
  parallel_for(0, units, 4096, [&](int64_t begin, int64_t end) {
    std::fill(dgate + begin, dgate + end, 0.0f);
    for (int64_t i = 0; i < s.n; ++i) {
      const float* q = workspace + i * units;
      for (int64_t k = begin; k < end; ++k) dgate[k] += q[k];
    }
  });
}

void flexible_random_mask(int64_t units, uint64_t seed, uint64_t offset, float* mask) {
  parallel_for(0, units, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) mask[k] = philox::uniform(seed, offset, static_cast<uint64_t>(k)) < 0.5f;
  });
}

}  // namespace flexnn::cpu
