// ops::flexible_blend and ops::flexible_conv2d: one validation of the blend's shapes (the branches
// against each other and against the gate values), the fused kernels of the operands' device, and
// their fused backwards, which save only the pool's argmax (and, for the fused layer on CUDA, the
// convolution branch) beside the inputs. On the CPU the fused layer is the composition conv2d then
// flexible_blend; on CUDA it is one kernel each way (kernels/cuda/flexible.hpp).
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "engine/ops/conv_shape.hpp"
#include "engine/ops/gate_backward.hpp"
#include "engine/ops/pool_shape.hpp"
#include "kernels/cpu/flexible.hpp"
#include "kernels/cuda/flexible.hpp"
#include "kernels/cuda/memory.hpp"

namespace flexnn::ops {
namespace {

const char* gate_name(FlexGate gate) { return gate == FlexGate::mask ? "mask" : "threshold"; }

// Validates the blend of a convolution output of shape c [N, C, H, W] with the max-pool of x under
// gate_values [C, H, W]; errors name `op`.
FlexibleShape blend_shape(const char* op, const Shape& c, const Tensor& x, const Tensor& gate_values, FlexGate gate,
                          const FlexiblePool& pool) {
  check_float(x, op, "input");
  check_float(gate_values, op, gate_name(gate));
  check_rank(x, 4, op, "input [N, C, H, W]");
  FLEXNN_CHECK(x.size(0) == c[0], "{}: input {} and convolution output {} have different batch sizes", op,
               shape_str(x.shape()), shape_str(c));
  FLEXNN_CHECK(x.size(1) == c[1] || x.size(1) == 1,
               "{}: the input has {} channels and the convolution {}: they must be equal, or the input must have "
               "1 channel (broadcast to all); input {}, convolution output {}",
               op, x.size(1), c[1], shape_str(x.shape()), shape_str(c));
  const Pool2dShape pooled = pool_shape(op, x, pool.kernel, pool.stride, pool.padding, false);
  FLEXNN_CHECK(pooled.out_h == c[2] && pooled.out_w == c[3],
               "{}: the pool branch gives {}x{} maps (input {}, pool {}x{}, stride {}x{}, padding {}x{}) but the "
               "convolution gives {}x{} (output {}): both branches must have the same spatial size",
               op, pooled.out_h, pooled.out_w, shape_str(x.shape()), pool.kernel.h, pool.kernel.w, pool.stride.h,
               pool.stride.w, pool.padding.h, pool.padding.w, c[2], c[3], shape_str(c));
  const Shape unit_shape{c[1], c[2], c[3]};
  FLEXNN_CHECK(gate_values.shape() == unit_shape, "{}: {} of shape {} does not match the units {} of output {}", op,
               gate_name(gate), shape_str(gate_values.shape()), shape_str(unit_shape), shape_str(c));
  return {.n = c[0], .channels = c[1], .h = c[2], .w = c[3], .pool_channels = x.size(1), .pool = pooled};
}

// Where a forward counts the units that took the pool branch: a host value on the CPU, a device
// scalar on CUDA, read back (a synchronisation) only when the caller asked for the statistics.
class PoolCount {
 public:
  PoolCount(FlexibleStats* stats, Device device) : stats_(stats) {
    if (stats_ != nullptr && device.is_cuda()) on_device_ = Tensor::empty({1}, DType::Int64, device);
  }
  int64_t* target() { return on_device_.defined() ? on_device_.data<int64_t>() : &host_; }
  // Adds the count to the statistics of `units` output units.
  void report(int64_t units) {
    if (stats_ == nullptr) return;
    if (on_device_.defined()) cuda::copy_device_to_host(&host_, on_device_.raw_data(), sizeof host_);
    stats_->pool_units += host_;
    stats_->units += units;
  }

 private:
  FlexibleStats* stats_;
  Tensor on_device_;
  int64_t host_ = 0;
};

// The fused layer on CUDA: one forward kernel, one backward kernel.
Tensor flexible_conv2d_cuda(const Conv2dShape& conv, const FlexibleShape& flex, const Tensor& x, const Tensor& weight,
                            const Tensor& bias, const Tensor& gate_values, FlexGate gate, float sharpness,
                            FlexibleStats* stats) {
  const Device device = x.device();
  const bool backward = any_requires_grad({&x, &weight, &bias, &gate_values});
  Tensor y = Tensor::empty({conv.n, conv.c_out, conv.out_h, conv.out_w}, DType::Float32, device);
  Tensor c = backward ? Tensor::empty(y.shape(), DType::Float32, device) : Tensor();
  // The argmax as int32 positions, held in a float32 tensor of the same element size (the engine
  // has no int32 dtype; the int64 the CPU uses would double this tensor's memory traffic).
  Tensor argmax = backward ? Tensor::empty({conv.n, conv.c_in, conv.out_h, conv.out_w}, DType::Float32, device)
                           : Tensor();
  const auto argmax_of = [](const Tensor& t) { return reinterpret_cast<int32_t*>(t.data<float>()); };
  PoolCount count(stats, device);
  cuda::flexible_conv2d_forward(conv, flex, gate, sharpness, x.data<float>(), weight.data<float>(),
                                bias.defined() ? bias.data<float>() : nullptr, gate_values.data<float>(),
                                y.data<float>(), backward ? c.data<float>() : nullptr,
                                backward ? argmax_of(argmax) : nullptr, stats != nullptr ? count.target() : nullptr);
  count.report(y.numel());
  if (!backward) return y;
  const bool need_x = x.requires_grad(), need_weight = weight.requires_grad();
  const bool need_bias = bias.defined() && bias.requires_grad();
  const bool need_gate = gate != FlexGate::mask && gate_values.requires_grad();
  const float backward_sharpness = gate_backward_sharpness(sharpness);  // BPDA may soften the gate's backward
  return record(y, "flexible_conv2d", {x, weight, bias, gate_values},
                [=, x = x.detach(), weight = weight.detach(), gate_values = gate_values.detach()](const Tensor& grad) {
                  std::vector<Tensor> grads(4);
                  if (need_x) grads[0] = Tensor::empty(x.shape(), DType::Float32, device);
                  if (need_weight) grads[1] = Tensor::empty(weight.shape(), DType::Float32, device);
                  if (need_bias) grads[2] = Tensor::empty({conv.c_out}, DType::Float32, device);
                  if (need_gate) grads[3] = Tensor::empty(gate_values.shape(), DType::Float32, device);
                  Tensor workspace;
                  if (need_weight || need_bias)
                    workspace = Tensor::empty({cuda::flexible_conv2d_backward_workspace(conv, flex)},
                                              DType::Float32, device);
                  const auto data = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
                  cuda::flexible_conv2d_backward(conv, flex, gate, backward_sharpness, x.data<float>(),
                                                 weight.data<float>(), gate_values.data<float>(), c.data<float>(),
                                                 argmax_of(argmax), grad.data<float>(), data(grads[0]),
                                                 data(grads[1]), data(grads[2]), data(grads[3]), data(workspace));
                  return grads;
                });
}

}  // namespace

Tensor flexible_blend(const Tensor& c, const Tensor& x, const Tensor& gate_values, FlexGate gate, float sharpness,
                      const FlexiblePool& pool, FlexibleStats* stats) {
  const char* op = "flexible_blend";
  check_float(c, op, "convolution output");
  check_rank(c, 4, op, "convolution output [N, C, H, W]");
  const FlexibleShape s = blend_shape(op, c.shape(), x, gate_values, gate, pool);
  const Device device = common_device(op, {&c, &x, &gate_values});
  const bool cuda = device.is_cuda();

  Tensor y = Tensor::empty(c.shape(), DType::Float32, device);
  const bool need_c = c.requires_grad(), need_x = x.requires_grad();
  const bool need_gate = gate != FlexGate::mask && gate_values.requires_grad();
  const bool backward = any_requires_grad({&c, &x, &gate_values});
  Tensor argmax = backward ? Tensor::empty({s.n, s.pool_channels, s.h, s.w}, DType::Int64, device) : Tensor();
  PoolCount count(stats, device);
  const auto forward = cuda ? cuda::flexible_forward : cpu::flexible_forward;
  forward(s, gate, sharpness, x.data<float>(), c.data<float>(), gate_values.data<float>(), y.data<float>(),
          backward ? argmax.data<int64_t>() : nullptr, cuda && stats == nullptr ? nullptr : count.target());
  count.report(y.numel());
  if (!backward) return y;
  const float backward_sharpness = gate_backward_sharpness(sharpness);  // BPDA may soften the gate's backward
  return record(y, op, {c, x, gate_values},
                [=, c = c.detach(), x = x.detach(), gate_values = gate_values.detach()](const Tensor& grad) {
                  std::vector<Tensor> grads(3);
                  grads[0] = Tensor::empty(c.shape(), DType::Float32, device);  // always: the blend needs it
                  if (need_x) grads[1] = Tensor::empty(x.shape(), DType::Float32, device);
                  if (need_gate) grads[2] = Tensor::empty(gate_values.shape(), DType::Float32, device);
                  // The CPU sums the thresholds' per-image terms in it; CUDA keeps the pool's dm there.
                  Tensor workspace;
                  if (cuda ? need_x : need_gate) workspace = Tensor::empty(c.shape(), DType::Float32, device);
                  const auto backward_kernel = cuda ? cuda::flexible_backward : cpu::flexible_backward;
                  backward_kernel(s, gate, backward_sharpness, x.data<float>(), c.data<float>(),
                                  gate_values.data<float>(), argmax.data<int64_t>(), grad.data<float>(),
                                  grads[0].data<float>(),
                                  need_x ? grads[1].data<float>() : nullptr,
                                  need_gate ? grads[2].data<float>() : nullptr,
                                  workspace.defined() ? workspace.data<float>() : nullptr);
                  if (!need_c) grads[0] = Tensor();
                  return grads;
                });
}

Tensor flexible_conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
                       const Tensor& gate_values, FlexGate gate, float sharpness, const FlexiblePool& pool,
                       FlexibleStats* stats) {
  const char* op = "flexible_conv2d";
  check_float(x, op, "input");
  check_rank(x, 4, op, "input [N, C, H, W]");
  const Device device = common_device(op, {&x, &weight, &bias, &gate_values});
  if (!device.is_cuda())
    return flexible_blend(conv2d(x, weight, bias, stride, padding), x, gate_values, gate, sharpness, pool, stats);
  const Conv2dShape conv = conv_shape(op, x, weight, bias, stride, padding);
  const FlexibleShape flex = blend_shape(op, {conv.n, conv.c_out, conv.out_h, conv.out_w}, x, gate_values, gate, pool);
  return flexible_conv2d_cuda(conv, flex, x, weight, bias, gate_values, gate, sharpness, stats);
}

}  // namespace flexnn::ops
