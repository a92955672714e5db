// ops::conv2d: checks shapes, runs the CPU im2col + GEMM kernel and records a backward that
// computes the input, weight and bias gradients only for the inputs that need them.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/conv2d.hpp"

namespace flexnn::ops {

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding) {
  check_float(x, "conv2d", "input");
  check_float(weight, "conv2d", "weight");
  check_rank(x, 4, "conv2d", "input [N, C, H, W]");
  check_rank(weight, 4, "conv2d", "weight [C_out, C_in, kH, kW]");
  FLEXNN_CHECK(x.size(1) == weight.size(1),
               "conv2d: input of shape {} has {} channels but weight of shape {} expects {}", shape_str(x.shape()),
               x.size(1), shape_str(weight.shape()), weight.size(1));
  FLEXNN_CHECK(
      x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0 && weight.size(0) > 0 && weight.size(2) > 0 && weight.size(3) > 0,
      "conv2d: empty input {} or weight {}", shape_str(x.shape()), shape_str(weight.shape()));
  if (bias.defined()) {
    check_float(bias, "conv2d", "bias");
    FLEXNN_CHECK(bias.shape() == Shape{weight.size(0)},
                 "conv2d: bias of shape {} for weight of shape {} (expected [{}])", shape_str(bias.shape()),
                 shape_str(weight.shape()), weight.size(0));
  }
  FLEXNN_CHECK(stride.h > 0 && stride.w > 0, "conv2d: stride must be positive, got {}x{}", stride.h, stride.w);
  FLEXNN_CHECK(padding.h >= 0 && padding.w >= 0, "conv2d: padding must be non-negative, got {}x{}", padding.h,
               padding.w);
  const int64_t padded_h = x.size(2) + 2 * padding.h, padded_w = x.size(3) + 2 * padding.w;
  FLEXNN_CHECK(weight.size(2) <= padded_h && weight.size(3) <= padded_w,
               "conv2d: kernel {}x{} (weight {}) is larger than the padded input {}x{} (input {}, padding {}x{})",
               weight.size(2), weight.size(3), shape_str(weight.shape()), padded_h, padded_w, shape_str(x.shape()),
               padding.h, padding.w);

  const cpu::Conv2dShape s{.n = x.size(0),
                           .c_in = x.size(1),
                           .h = x.size(2),
                           .w = x.size(3),
                           .c_out = weight.size(0),
                           .kh = weight.size(2),
                           .kw = weight.size(3),
                           .stride_h = stride.h,
                           .stride_w = stride.w,
                           .pad_h = padding.h,
                           .pad_w = padding.w,
                           .out_h = (padded_h - weight.size(2)) / stride.h + 1,
                           .out_w = (padded_w - weight.size(3)) / stride.w + 1};
  Tensor out = Tensor::empty({s.n, s.c_out, s.out_h, s.out_w});
  cpu::conv2d_forward(s, x.data<float>(), weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                      out.data<float>());
  if (!any_requires_grad({&x, &weight, &bias})) return out;

  const bool need_x = x.requires_grad(), need_weight = weight.requires_grad();
  const bool need_bias = bias.defined() && bias.requires_grad();
  return record(out, "conv2d", {x, weight, bias},
                [s, x = x.detach(), weight = weight.detach(), need_x, need_weight, need_bias](const Tensor& grad) {
                  std::vector<Tensor> grads(3);
                  if (need_x) {
                    grads[0] = Tensor::empty(x.shape());
                    cpu::conv2d_backward_input(s, grad.data<float>(), weight.data<float>(), grads[0].data<float>());
                  }
                  if (need_weight) {
                    grads[1] = Tensor::empty(weight.shape());
                    cpu::conv2d_backward_weight(s, x.data<float>(), grad.data<float>(), grads[1].data<float>());
                  }
                  if (need_bias) {
                    grads[2] = Tensor::empty({s.c_out});
                    cpu::conv2d_backward_bias(s, grad.data<float>(), grads[2].data<float>());
                  }
                  return grads;
                });
}

}  // namespace flexnn::ops
