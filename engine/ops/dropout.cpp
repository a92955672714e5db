// ops::dropout and ops::dropout2d: validation, the identity shortcut, and the mask draw from the
// generator's Philox stream. Each training call with p > 0 reserves philox::uniform_blocks(units)
// blocks, a unit being one element (dropout) or one (n, c) channel (dropout2d); the backward
// replays the same (seed, offset) draw on the gradient instead of storing a mask. Both backends
// read the same stream, so a mask is the same on the CPU and on a CUDA device.
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/dropout.hpp"
#include "kernels/cuda/dropout.hpp"
#include "kernels/philox.hpp"

namespace flexnn::ops {
namespace {

Tensor apply_dropout(const char* op, const Tensor& x, float p, bool training, Generator& gen, int64_t units,
                     int64_t unit_size) {
  if (!training || p == 0.0f) return x;
  const uint64_t seed = gen.seed(), offset = gen.reserve(philox::uniform_blocks(static_cast<uint64_t>(units)));
  const auto kernel = x.device().is_cuda() ? cuda::dropout : cpu::dropout;
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  kernel(x.data<float>(), units, unit_size, p, seed, offset, y.data<float>());
  return record(y, op, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::Float32, g.device());
    kernel(g.data<float>(), units, unit_size, p, seed, offset, dx.data<float>());
    return {dx};
  });
}

void check_common(const char* op, const Tensor& x, float p) {
  check_float(x, op, "input");
  FLEXNN_CHECK(p >= 0.0f && p <= 1.0f, "{}: dropout probability has to be between 0 and 1, got {}", op, p);
}

}  // namespace

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  check_common("dropout", x, p);
  return apply_dropout("dropout", x, p, training, gen, x.numel(), 1);
}

// Rank 3 or 4, the first two dims being N and C (a 3-D input is [N, C, L], as torch 1.13's
// dropout2d treats it); each (n, c) channel is kept or zeroed whole.
Tensor dropout2d(const Tensor& x, float p, bool training, Generator& gen) {
  check_common("dropout2d", x, p);
  FLEXNN_CHECK(x.dim() == 3 || x.dim() == 4,
               "dropout2d: expected an input of shape [N, C, H, W] or [N, C, L], found {}", shape_str(x.shape()));
  const int64_t channels = x.size(0) * x.size(1);
  return apply_dropout("dropout2d", x, p, training, gen, channels, channels == 0 ? 0 : x.numel() / channels);
}

}  // namespace flexnn::ops
