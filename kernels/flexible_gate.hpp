// The flexible layer's gate, shared by every backend: how a unit blends its max-pool value m and
// its convolution value c (the paper's Eq. 1), and how the random mode's mask is drawn.
//   threshold:          g = σ(s·(T − m)),  f = g·m + σ(−s·(T − m))·c   (pool where m is below T)
//   reverse_threshold:  g = σ(s·(m − T)),  f = g·m + σ(−s·(m − T))·c   (pool where m is above T)
//   mask:               g = M ∈ {0, 1},    f = M·m + (1 − M)·c
// Both σ terms are computed from e = exp(−|z|) (σ(|z|) = 1/(1+e), σ(−|z|) = e/(1+e)), so neither
// loses precision when the gate saturates. A unit "takes the pool branch" when g > 1/2 (z > 0,
// or M = 1). Random masks: unit i (row-major over [C, H, W]) is 1 when
// philox::uniform(seed, offset, i) < 1/2, the caller reserving philox::uniform_blocks(units).
#pragma once

#include <cstdint>

namespace flexnn {

enum class FlexGate : int { threshold, reverse_threshold, mask };

}  // namespace flexnn
