// ops::flexible_blend: checks the branches' shapes against each other and against the gate
// values, runs the fused CPU kernel (pool, gate, blend) and records its fused backward, which
// saves only the pool's argmax beside the inputs.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/flexible.hpp"

namespace flexnn::ops {

Tensor flexible_blend(const Tensor& c, const Tensor& x, const Tensor& gate_values, FlexGate gate, float sharpness,
                      const FlexiblePool& pool, FlexibleStats* stats) {
  const char* op = "flexible_blend";
  check_float(c, op, "convolution output");
  check_float(x, op, "input");
  check_float(gate_values, op, gate == FlexGate::mask ? "mask" : "threshold");
  check_rank(c, 4, op, "convolution output [N, C, H, W]");
  check_rank(x, 4, op, "input [N, C, H, W]");
  FLEXNN_CHECK(x.size(0) == c.size(0), "{}: input {} and convolution output {} have different batch sizes", op,
               shape_str(x.shape()), shape_str(c.shape()));
  FLEXNN_CHECK(x.size(1) == c.size(1) || x.size(1) == 1,
               "{}: the input has {} channels and the convolution {}: they must be equal, or the input must have "
               "1 channel (broadcast to all); input {}, convolution output {}",
               op, x.size(1), c.size(1), shape_str(x.shape()), shape_str(c.shape()));
  FLEXNN_CHECK(pool.kernel.h > 0 && pool.kernel.w > 0 && pool.stride.h > 0 && pool.stride.w > 0,
               "{}: pool kernel {}x{} and stride {}x{} must be positive", op, pool.kernel.h, pool.kernel.w,
               pool.stride.h, pool.stride.w);
  FLEXNN_CHECK(pool.padding.h >= 0 && pool.padding.w >= 0 && pool.padding.h <= pool.kernel.h / 2 &&
                   pool.padding.w <= pool.kernel.w / 2,
               "{}: pool padding {}x{} must be non-negative and at most half the kernel {}x{}", op, pool.padding.h,
               pool.padding.w, pool.kernel.h, pool.kernel.w);
  const int64_t pool_h = cpu::pool_output_size(x.size(2), pool.kernel.h, pool.stride.h, pool.padding.h, false);
  const int64_t pool_w = cpu::pool_output_size(x.size(3), pool.kernel.w, pool.stride.w, pool.padding.w, false);
  FLEXNN_CHECK(pool_h == c.size(2) && pool_w == c.size(3),
               "{}: the pool branch gives {}x{} maps (input {}, pool {}x{}, stride {}x{}, padding {}x{}) but the "
               "convolution gives {}x{} (output {}): both branches must have the same spatial size",
               op, pool_h, pool_w, shape_str(x.shape()), pool.kernel.h, pool.kernel.w, pool.stride.h, pool.stride.w,
               pool.padding.h, pool.padding.w, c.size(2), c.size(3), shape_str(c.shape()));
  const Shape unit_shape{c.size(1), c.size(2), c.size(3)};
  FLEXNN_CHECK(gate_values.shape() == unit_shape, "{}: {} of shape {} does not match the units {} of output {}", op,
               gate == FlexGate::mask ? "mask" : "threshold", shape_str(gate_values.shape()), shape_str(unit_shape),
               shape_str(c.shape()));

  const cpu::FlexibleShape s{.n = c.size(0),
                             .channels = c.size(1),
                             .h = c.size(2),
                             .w = c.size(3),
                             .pool_channels = x.size(1),
                             .pool = {.planes = x.size(0) * x.size(1),
                                      .h = x.size(2),
                                      .w = x.size(3),
                                      .out_h = pool_h,
                                      .out_w = pool_w,
                                      .kh = pool.kernel.h,
                                      .kw = pool.kernel.w,
                                      .stride_h = pool.stride.h,
                                      .stride_w = pool.stride.w,
                                      .pad_h = pool.padding.h,
                                      .pad_w = pool.padding.w}};
  Tensor y = Tensor::empty(c.shape());
  const bool need_c = c.requires_grad(), need_x = x.requires_grad();
  const bool need_gate = gate != FlexGate::mask && gate_values.requires_grad();
  const bool backward = any_requires_grad({&c, &x}) || need_gate;
  Tensor argmax = backward ? Tensor::empty({s.n, s.pool_channels, s.h, s.w}, DType::Int64) : Tensor();
  int64_t pool_units = 0;
  cpu::flexible_forward(s, gate, sharpness, x.data<float>(), c.data<float>(), gate_values.data<float>(),
                        y.data<float>(), backward ? argmax.data<int64_t>() : nullptr, &pool_units);
  if (stats != nullptr) {
    stats->pool_units += pool_units;
    stats->units += y.numel();
  }
  if (!backward) return y;
  return record(y, op, {c, x, gate_values},
                [=, c = c.detach(), x = x.detach(), gate_values = gate_values.detach()](const Tensor& grad) {
                  std::vector<Tensor> grads(3);
                  grads[0] = Tensor::empty(c.shape());  // always computed: the blend needs it anyway
                  if (need_x) grads[1] = Tensor::empty(x.shape());
                  Tensor workspace;
                  if (need_gate) {
                    grads[2] = Tensor::empty(gate_values.shape());
                    workspace = Tensor::empty(c.shape());
                  }
                  cpu::flexible_backward(s, gate, sharpness, x.data<float>(), c.data<float>(),
                                         gate_values.data<float>(), argmax.data<int64_t>(), grad.data<float>(),
                                         grads[0].data<float>(), need_x ? grads[1].data<float>() : nullptr,
                                         need_gate ? grads[2].data<float>() : nullptr,
                                         need_gate ? workspace.data<float>() : nullptr);
                  if (!need_c) grads[0] = Tensor();
                  return grads;
                });
}

}  // namespace flexnn::ops
