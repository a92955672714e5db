// ops::max_pool2d and ops::avg_pool2d: one shared check of the input and window parameters
// (torch's rules), the pooling kernels of the input's device, and their recorded backwards.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "engine/ops/pool_shape.hpp"
#include "kernels/cpu/pool2d.hpp"
#include "kernels/cuda/pool2d.hpp"

namespace flexnn::ops {

cpu::Pool2dShape pool_shape(const char* op, const Tensor& x, Size2 kernel, std::optional<Size2> stride_opt,
                            Size2 padding, bool ceil_mode) {
  const Size2 stride = stride_opt.value_or(kernel);
  check_float(x, op, "input");
  check_rank(x, 4, op, "input [N, C, H, W]");
  FLEXNN_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, "{}: empty input of shape {}", op,
               shape_str(x.shape()));
  FLEXNN_CHECK(kernel.h > 0 && kernel.w > 0, "{}: kernel size must be positive, got {}x{}", op, kernel.h, kernel.w);
  FLEXNN_CHECK(stride.h > 0 && stride.w > 0, "{}: stride must be positive, got {}x{}", op, stride.h, stride.w);
  FLEXNN_CHECK(padding.h >= 0 && padding.w >= 0 && padding.h <= kernel.h / 2 && padding.w <= kernel.w / 2,
               "{}: padding {}x{} must be non-negative and at most half the kernel size {}x{}", op, padding.h,
               padding.w, kernel.h, kernel.w);
  const int64_t out_h = cpu::pool_output_size(x.size(2), kernel.h, stride.h, padding.h, ceil_mode);
  const int64_t out_w = cpu::pool_output_size(x.size(3), kernel.w, stride.w, padding.w, ceil_mode);
  FLEXNN_CHECK(out_h > 0 && out_w > 0,
               "{}: kernel {}x{} is larger than the padded input {}x{} (input {}, padding {}x{})", op, kernel.h,
               kernel.w, x.size(2) + 2 * padding.h, x.size(3) + 2 * padding.w, shape_str(x.shape()), padding.h,
               padding.w);
  return {.planes = x.size(0) * x.size(1),
          .h = x.size(2),
          .w = x.size(3),
          .out_h = out_h,
          .out_w = out_w,
          .kh = kernel.h,
          .kw = kernel.w,
          .stride_h = stride.h,
          .stride_w = stride.w,
          .pad_h = padding.h,
          .pad_w = padding.w};
}

Tensor max_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding, bool ceil_mode) {
  const Pool2dShape s = pool_shape("max_pool2d", x, kernel, stride, padding, ceil_mode);
  const Shape in_shape = x.shape();
  const Device device = x.device();
  const auto forward = device.is_cuda() ? cuda::max_pool2d_forward : cpu::max_pool2d_forward;
  Tensor out = Tensor::empty({in_shape[0], in_shape[1], s.out_h, s.out_w}, DType::Float32, device);
  if (!any_requires_grad({&x})) {
    forward(s, x.data<float>(), out.data<float>(), nullptr);
    return out;
  }
  Tensor indices = Tensor::empty(out.shape(), DType::Int64, device);
  forward(s, x.data<float>(), out.data<float>(), indices.data<int64_t>());
  return record(out, "max_pool2d", {x}, [s, in_shape, indices](const Tensor& grad) {
    Tensor dx = Tensor::empty(in_shape, DType::Float32, grad.device());
    const auto backward = grad.device().is_cuda() ? cuda::max_pool2d_backward : cpu::max_pool2d_backward;
    backward(s, grad.data<float>(), indices.data<int64_t>(), dx.data<float>());
    return std::vector<Tensor>{dx};
  });
}

Tensor avg_pool2d(const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding, bool ceil_mode,
                  bool count_include_pad) {
  const Pool2dShape s = pool_shape("avg_pool2d", x, kernel, stride, padding, ceil_mode);
  const Shape in_shape = x.shape();
  const Device device = x.device();
  Tensor out = Tensor::empty({in_shape[0], in_shape[1], s.out_h, s.out_w}, DType::Float32, device);
  const auto forward = device.is_cuda() ? cuda::avg_pool2d_forward : cpu::avg_pool2d_forward;
  forward(s, count_include_pad, x.data<float>(), out.data<float>());
  return record(out, "avg_pool2d", {x}, [s, in_shape, count_include_pad](const Tensor& grad) {
    Tensor dx = Tensor::empty(in_shape, DType::Float32, grad.device());
    const auto backward = grad.device().is_cuda() ? cuda::avg_pool2d_backward : cpu::avg_pool2d_backward;
    backward(s, count_include_pad, grad.data<float>(), dx.data<float>());
    return std::vector<Tensor>{dx};
  });
}

}  // namespace flexnn::ops
