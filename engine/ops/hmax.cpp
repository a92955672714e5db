// HMAX's ops (kernels/cpu/hmax.hpp). hmax_s2 and hmax_s2_max: one check of the S2 operands, the
// fused CPU kernels each way (the map saves its output, the maximum only its value and position);
// on CUDA the same functions composed from the element-wise ops. conv2d_toeplitz: a convolution as
// one GEMM of the images with the weight's Toeplitz expansion, rebuilt in the backward rather than
// kept, so the graph holds only the input and the weight; on CUDA it is conv2d.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "engine/ops/conv_shape.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/hmax.hpp"

#include <cmath>

namespace flexnn::ops {
namespace {

// Validates S2's operands (errors name `op`) and returns their shape.
cpu::S2Shape s2_shape(const char* op, const Tensor& cross, const Tensor& patch_sq, const Tensor& weight_sq,
                      float sigma) {
  check_float(cross, op, "cross term");
  check_float(patch_sq, op, "patch sum of squares");
  check_float(weight_sq, op, "prototype sum of squares");
  check_rank(cross, 4, op, "cross term [N, P, H, W]");
  const Shape& c = cross.shape();
  FLEXNN_CHECK(patch_sq.shape() == Shape({c[0], 1, c[2], c[3]}) && weight_sq.shape() == Shape{c[1]},
               "{}: for a cross term {} expected patch sums of squares [{}, 1, {}, {}] and prototype sums of squares "
               "[{}], found {} and {}",
               op, shape_str(c), c[0], c[2], c[3], c[1], shape_str(patch_sq.shape()), shape_str(weight_sq.shape()));
  FLEXNN_CHECK(c[2] * c[3] > 0, "{}: empty maps {}", op, shape_str(c));
  FLEXNN_CHECK(sigma > 0 && std::isfinite(sigma), "{}: sigma must be positive, found {}", op, sigma);
  common_device(op, {&cross, &patch_sq, &weight_sq});
  return {.n = c[0], .p = c[1], .plane = c[2] * c[3]};
}

float s2_coefficient(float sigma) { return -1.0f / (2.0f * sigma * sigma); }

// The S2 map composed from element-wise ops (the CUDA path).
Tensor s2_composed(const Tensor& cross, const Tensor& patch_sq, const Tensor& weight_sq, float sigma) {
  const Tensor distance = patch_sq - 2.0f * cross + weight_sq.reshape({1, cross.size(1), 1, 1});
  return exp(distance * s2_coefficient(sigma));
}

}  // namespace

Tensor hmax_s2(const Tensor& cross, const Tensor& patch_sq, const Tensor& weight_sq, float sigma) {
  const cpu::S2Shape s = s2_shape("hmax_s2", cross, patch_sq, weight_sq, sigma);
  if (cross.device().is_cuda()) return s2_composed(cross, patch_sq, weight_sq, sigma);
  const float coef = s2_coefficient(sigma);
  Tensor y = Tensor::empty(cross.shape());
  cpu::hmax_s2_forward(s, coef, cross.data<float>(), patch_sq.data<float>(), weight_sq.data<float>(), y.data<float>());
  if (!any_requires_grad({&cross, &patch_sq, &weight_sq})) return y;
  const bool need_cross = cross.requires_grad(), need_patch = patch_sq.requires_grad();
  const bool need_weight = weight_sq.requires_grad();
  return record(y, "hmax_s2", {cross, patch_sq, weight_sq},
                [=, y_saved = y.detach()](const Tensor& grad) {
                  std::vector<Tensor> grads(3);
                  if (need_cross) grads[0] = Tensor::empty(cross.shape());
                  if (need_patch) grads[1] = Tensor::empty(patch_sq.shape());
                  if (need_weight) grads[2] = Tensor::empty(weight_sq.shape());
                  const auto data = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
                  cpu::hmax_s2_backward(s, coef, y_saved.data<float>(), grad.data<float>(), data(grads[0]),
                                        data(grads[1]), data(grads[2]));
                  return grads;
                });
}

Tensor hmax_s2_max(const Tensor& cross, const Tensor& patch_sq, const Tensor& weight_sq, float sigma) {
  const cpu::S2Shape s = s2_shape("hmax_s2_max", cross, patch_sq, weight_sq, sigma);
  if (cross.device().is_cuda()) return max(s2_composed(cross, patch_sq, weight_sq, sigma).flatten(2), 2).values;
  const float coef = s2_coefficient(sigma);
  Tensor y = Tensor::empty({s.n, s.p});
  Tensor at = Tensor::empty({s.n, s.p}, DType::Int64);
  cpu::hmax_s2_max_forward(s, coef, cross.data<float>(), patch_sq.data<float>(), weight_sq.data<float>(),
                           y.data<float>(), at.data<int64_t>());
  if (!any_requires_grad({&cross, &patch_sq, &weight_sq})) return y;
  const bool need_cross = cross.requires_grad(), need_patch = patch_sq.requires_grad();
  const bool need_weight = weight_sq.requires_grad();
  const Shape cross_shape = cross.shape(), patch_shape = patch_sq.shape();
  return record(y, "hmax_s2_max", {cross, patch_sq, weight_sq},
                [=, y_saved = y.detach()](const Tensor& grad) {
                  std::vector<Tensor> grads(3);
                  if (need_cross) grads[0] = Tensor::empty(cross_shape);
                  if (need_patch) grads[1] = Tensor::empty(patch_shape);
                  if (need_weight) grads[2] = Tensor::empty({s.p});
                  const auto data = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
                  cpu::hmax_s2_max_backward(s, coef, y_saved.data<float>(), at.data<int64_t>(), grad.data<float>(),
                                            data(grads[0]), data(grads[1]), data(grads[2]));
                  return grads;
                });
}

Tensor conv2d_toeplitz(const Tensor& x, const Tensor& weight, Size2 stride, Size2 padding) {
  const Conv2dShape s = conv_shape("conv2d_toeplitz", x, weight, {}, stride, padding);
  const Device device = common_device("conv2d_toeplitz", {&x, &weight});
  if (device.is_cuda()) return conv2d(x, weight, {}, stride, padding);
  const int64_t k = s.c_in * s.h * s.w, rows = s.c_out * s.out_plane();
  Tensor m = Tensor::empty({rows, k});
  cpu::toeplitz_expand(s, weight.data<float>(), m.data<float>());
  Tensor out = Tensor::empty({s.n, s.c_out, s.out_h, s.out_w});
  // out [n, rows] = x [n, k] M^T
  cpu::gemm(false, true, s.n, rows, k, 1.0f, x.data<float>(), k, m.data<float>(), k, 0.0f, out.data<float>(), rows);
  if (!any_requires_grad({&x, &weight})) return out;
  const bool need_x = x.requires_grad(), need_weight = weight.requires_grad();
  return record(out, "conv2d_toeplitz", {x, weight},
                [s, k, rows, need_x, need_weight, x = x.detach(), weight = weight.detach()](const Tensor& grad) {
                  std::vector<Tensor> grads(2);
                  if (need_x) {  // dx [n, k] = grad [n, rows] M
                    Tensor m = Tensor::empty({rows, k});
                    cpu::toeplitz_expand(s, weight.data<float>(), m.data<float>());
                    grads[0] = Tensor::empty(x.shape());
                    cpu::gemm(false, false, s.n, k, rows, 1.0f, grad.data<float>(), rows, m.data<float>(), k, 0.0f,
                              grads[0].data<float>(), k);
                  }
                  if (need_weight) {  // dM [rows, k] = grad^T x, folded onto the weight
                    Tensor dm = Tensor::empty({rows, k});
                    cpu::gemm(true, false, rows, k, s.n, 1.0f, grad.data<float>(), rows, x.data<float>(), k, 0.0f,
                              dm.data<float>(), k);
                    grads[1] = Tensor::empty(weight.shape());
                    cpu::toeplitz_fold(s, dm.data<float>(), grads[1].data<float>());
                  }
                  return grads;
                });
}

}  // namespace flexnn::ops
