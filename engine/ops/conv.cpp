// ops::conv2d: checks shapes, runs the im2col + GEMM kernel of the operands' device (the CUDA one
// with a scratch tensor from the caching allocator) and records a backward that computes the
// input, weight and bias gradients only for the inputs that need them.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "engine/ops/conv_shape.hpp"
#include "kernels/cpu/conv2d.hpp"
#include "kernels/cuda/conv2d.hpp"

namespace flexnn::ops {
namespace {

// The CUDA kernels' scratch for shape s (the CPU kernels need none).
float* workspace(Tensor& scratch, const Conv2dShape& s, Device device) {
  if (!device.is_cuda()) return nullptr;
  scratch = Tensor::empty({cuda::conv2d_workspace_size(s)}, DType::Float32, device);
  return scratch.data<float>();
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding) {
  const Conv2dShape s = conv_shape("conv2d", x, weight, bias, stride, padding);
  const Device device = common_device("conv2d", {&x, &weight, &bias});
  Tensor out = Tensor::empty({s.n, s.c_out, s.out_h, s.out_w}, DType::Float32, device);
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  Tensor scratch;
  if (device.is_cuda())
    cuda::conv2d_forward(s, x.data<float>(), weight.data<float>(), b, out.data<float>(), workspace(scratch, s, device));
  else
    cpu::conv2d_forward(s, x.data<float>(), weight.data<float>(), b, out.data<float>());
  if (!any_requires_grad({&x, &weight, &bias})) return out;

  const bool need_x = x.requires_grad(), need_weight = weight.requires_grad();
  const bool need_bias = bias.defined() && bias.requires_grad();
  return record(out, "conv2d", {x, weight, bias},
                [s, x = x.detach(), weight = weight.detach(), need_x, need_weight, need_bias](const Tensor& grad) {
                  const Device device = grad.device();
                  const bool cuda = device.is_cuda();
                  Tensor scratch;
                  float* work = need_x || need_weight ? workspace(scratch, s, device) : nullptr;
                  std::vector<Tensor> grads(3);
                  if (need_x) {
                    grads[0] = Tensor::empty(x.shape(), DType::Float32, device);
                    if (cuda)
                      cuda::conv2d_backward_input(s, grad.data<float>(), weight.data<float>(), grads[0].data<float>(),
                                                  work);
                    else
                      cpu::conv2d_backward_input(s, grad.data<float>(), weight.data<float>(), grads[0].data<float>());
                  }
                  if (need_weight) {
                    grads[1] = Tensor::empty(weight.shape(), DType::Float32, device);
                    if (cuda)
                      cuda::conv2d_backward_weight(s, x.data<float>(), grad.data<float>(), grads[1].data<float>(),
                                                   work);
                    else
                      cpu::conv2d_backward_weight(s, x.data<float>(), grad.data<float>(), grads[1].data<float>());
                  }
                  if (need_bias) {
                    grads[2] = Tensor::empty({s.c_out}, DType::Float32, device);
                    const auto backward_bias = cuda ? cuda::conv2d_backward_bias : cpu::conv2d_backward_bias;
                    backward_bias(s, grad.data<float>(), grads[2].data<float>());
                  }
                  return grads;
                });
}

}  // namespace flexnn::ops
