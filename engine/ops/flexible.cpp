// ops::flexible_blend: checks the branches' shapes against each other and against the gate
// values, runs the fused CPU kernel (pool, gate, blend) and records its fused backward, which
// saves only the pool's argmax beside the inputs.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "engine/ops/pool_shape.hpp"
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
  const cpu::Pool2dShape pooled = pool_shape(op, x, pool.kernel, pool.stride, pool.padding, false);
  const int64_t pool_h = pooled.out_h, pool_w = pooled.out_w;
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
                             .pool = pooled};
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
