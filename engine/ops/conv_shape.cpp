// The convolution's checks and output size, as torch computes them.
#include "engine/ops/conv_shape.hpp"

#include "engine/ops/check.hpp"

namespace flexnn::ops {

Conv2dShape conv_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride,
                       Size2 padding) {
  check_float(x, op, "input");
  check_float(weight, op, "weight");
  check_rank(x, 4, op, "input [N, C, H, W]");
  check_rank(weight, 4, op, "weight [C_out, C_in, kH, kW]");
  FLEXNN_CHECK(x.size(1) == weight.size(1), "{}: input of shape {} has {} channels but weight of shape {} expects {}",
               op, shape_str(x.shape()), x.size(1), shape_str(weight.shape()), weight.size(1));
  FLEXNN_CHECK(
      x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0 && weight.size(0) > 0 && weight.size(2) > 0 && weight.size(3) > 0,
      "{}: empty input {} or weight {}", op, shape_str(x.shape()), shape_str(weight.shape()));
  if (bias.defined()) {
    check_float(bias, op, "bias");
    FLEXNN_CHECK(bias.shape() == Shape{weight.size(0)}, "{}: bias of shape {} for weight of shape {} (expected [{}])",
                 op, shape_str(bias.shape()), shape_str(weight.shape()), weight.size(0));
  }
  FLEXNN_CHECK(stride.h > 0 && stride.w > 0, "{}: stride must be positive, got {}x{}", op, stride.h, stride.w);
  FLEXNN_CHECK(padding.h >= 0 && padding.w >= 0, "{}: padding must be non-negative, got {}x{}", op, padding.h,
               padding.w);
  const int64_t padded_h = x.size(2) + 2 * padding.h, padded_w = x.size(3) + 2 * padding.w;
  FLEXNN_CHECK(weight.size(2) <= padded_h && weight.size(3) <= padded_w,
               "{}: kernel {}x{} (weight {}) is larger than the padded input {}x{} (input {}, padding {}x{})", op,
               weight.size(2), weight.size(3), shape_str(weight.shape()), padded_h, padded_w, shape_str(x.shape()),
               padding.h, padding.w);
  return {.n = x.size(0),
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
}

}  // namespace flexnn::ops
