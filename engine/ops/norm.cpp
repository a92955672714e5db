// ops::batch_norm: validates [N,C,...] inputs and the per-channel tensors, picks batch or running
// statistics, updates the running statistics in place when training, and records the backward
// (the full batch-statistics gradient in training, the affine one in evaluation). The kernels
// run on the input's device; every per-channel tensor must be there too.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/batch_norm.hpp"
#include "kernels/cuda/batch_norm.hpp"

#include <algorithm>

namespace flexnn::ops {
namespace {

float* data_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

void check_per_channel(const Tensor& t, const char* name, const Tensor& x) {
  if (!t.defined()) return;
  check_float(t, "batch_norm", name);
  FLEXNN_CHECK(t.shape() == Shape{x.size(1)}, "batch_norm: {} of shape {} for input of shape {} (expected [{}])",
               name, shape_str(t.shape()), shape_str(x.shape()), x.size(1));
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, float momentum, float eps) {
  check_float(x, "batch_norm", "input");
  FLEXNN_CHECK(x.dim() >= 2, "batch_norm: expected an input of shape [N, C] or [N, C, H, W], found {}",
               shape_str(x.shape()));
  check_per_channel(running_mean, "running_mean", x);
  check_per_channel(running_var, "running_var", x);
  check_per_channel(weight, "weight", x);
  check_per_channel(bias, "bias", x);
  FLEXNN_CHECK(running_mean.defined() == running_var.defined(),
               "batch_norm: running_mean and running_var must be given together");
  FLEXNN_CHECK(training || running_mean.defined(), "batch_norm: evaluation mode needs running_mean and running_var");
  const bool cuda = common_device("batch_norm", {&x, &running_mean, &running_var, &weight, &bias}).is_cuda();

  const BatchNormShape s{x.size(0), x.size(1), x.numel() / std::max<int64_t>(1, x.size(0) * x.size(1))};
  FLEXNN_CHECK(!training || s.n * s.hw > 1,
               "batch_norm: expected more than 1 value per channel when training, got input of shape {}",
               shape_str(x.shape()));
  Tensor mean = Tensor::empty({s.c}, DType::Float32, x.device());
  Tensor invstd = Tensor::empty({s.c}, DType::Float32, x.device());
  if (training) {
    const auto stats = cuda ? cuda::batch_norm_stats : cpu::batch_norm_stats;
    stats(x.data<float>(), s, eps, momentum, mean.data<float>(), invstd.data<float>(), data_or_null(running_mean),
          data_or_null(running_var));
  } else {
    mean.copy_(running_mean);  // a copy: the backward must not see later updates
    const auto running_invstd = cuda ? cuda::batch_norm_invstd : cpu::batch_norm_invstd;
    running_invstd(running_var.data<float>(), s.c, eps, invstd.data<float>());
  }
  Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
  const auto forward = cuda ? cuda::batch_norm_forward : cpu::batch_norm_forward;
  forward(x.data<float>(), mean.data<float>(), invstd.data<float>(), data_or_null(weight), data_or_null(bias), s,
          y.data<float>());

  return record(y, "batch_norm", {x, weight, bias},
                [x = x.detach(), weight = weight.defined() ? weight.detach() : Tensor(), mean, invstd, s, training,
                 cuda, want_dx = x.requires_grad(), want_dweight = weight.defined() && weight.requires_grad(),
                 want_dbias = bias.defined() && bias.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dx = want_dx ? Tensor::empty(x.shape(), DType::Float32, x.device()) : Tensor();
                  Tensor dweight = want_dweight ? Tensor::empty({s.c}, DType::Float32, x.device()) : Tensor();
                  Tensor dbias = want_dbias ? Tensor::empty({s.c}, DType::Float32, x.device()) : Tensor();
                  const auto backward = cuda ? cuda::batch_norm_backward : cpu::batch_norm_backward;
                  backward(g.data<float>(), x.data<float>(), mean.data<float>(), invstd.data<float>(),
                           data_or_null(weight), s, training, data_or_null(dx), data_or_null(dweight),
                           data_or_null(dbias));
                  return {dx, dweight, dbias};
                });
}

}  // namespace flexnn::ops
