// Layer constructors (PyTorch's default initialisation) and forwards that need more than one line.
#include "engine/nn/layers.hpp"

#include "engine/nn/init.hpp"
#include "kernels/cuda/batch_norm.hpp"

#include <cmath>
#include <string>

namespace flexnn::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, ops::Size2 kernel, ops::Size2 stride_, ops::Size2 padding_,
               bool with_bias, Generator& gen)
    : stride(stride_), padding(padding_) {
  FLEXNN_CHECK(in_channels > 0 && out_channels > 0 && kernel.h > 0 && kernel.w > 0,
               "Conv2d: channels and kernel must be positive, found in {} out {} kernel {}x{}", in_channels,
               out_channels, kernel.h, kernel.w);
  const Shape shape{out_channels, in_channels, kernel.h, kernel.w};
  weight = register_parameter("weight", init::kaiming_uniform(shape, std::sqrt(5.0), gen));
  if (with_bias) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(init::fan_in(shape)));
    bias = register_parameter("bias", init::uniform({out_channels}, -bound, bound, gen));
  }
}

Tensor Conv2d::forward(const Tensor& x) { return ops::conv2d(x, weight, bias, stride, padding); }

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator& gen) {
  FLEXNN_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, found in {} out {}",
               in_features, out_features);
  const Shape shape{out_features, in_features};
  weight = register_parameter("weight", init::kaiming_uniform(shape, std::sqrt(5.0), gen));
  if (with_bias) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(in_features));
    bias = register_parameter("bias", init::uniform({out_features}, -bound, bound, gen));
  }
}

Tensor Linear::forward(const Tensor& x) { return ops::linear(x, weight, bias); }

Normalize::Normalize(const std::vector<float>& mean_, const std::vector<float>& std_) {
  FLEXNN_CHECK(!mean_.empty() && mean_.size() == std_.size(),
               "Normalize: expected one mean and one std per channel, found {} means and {} stds", mean_.size(),
               std_.size());
  std::vector<float> inv(std_.size());
  for (size_t c = 0; c < std_.size(); ++c) {
    FLEXNN_CHECK(std_[c] > 0 && std::isfinite(std_[c]), "Normalize: std must be positive, found {} for channel {}",
                 std_[c], c);
    inv[c] = 1.0f / std_[c];
  }
  const int64_t channels = static_cast<int64_t>(mean_.size());
  mean = register_buffer("mean", Tensor::from_vector(mean_, {channels, 1, 1}), false);
  inv_std = register_buffer("inv_std", Tensor::from_vector(inv, {channels, 1, 1}), false);
}

Tensor Normalize::forward(const Tensor& x) {
  FLEXNN_CHECK(x.dim() == 4 && x.size(1) == mean.size(0),
               "Normalize: expected an input [N, {}, H, W], found {}", mean.size(0), shape_str(x.shape()));
  return (x - mean) * inv_std;
}

BatchNorm::BatchNorm(int64_t num_features, int64_t input_rank, float eps_, float momentum_, bool affine)
    : eps(eps_), momentum(momentum_), input_rank_(input_rank) {
  FLEXNN_CHECK(num_features > 0, "BatchNorm: num_features must be positive, found {}", num_features);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
  running_mean = register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var = register_buffer("running_var", Tensor::ones({num_features}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::Int64));
}

Tensor BatchNorm::forward(const Tensor& x) {
  FLEXNN_CHECK(x.dim() == input_rank_, "BatchNorm{}d: expected a {}-D input, found shape {}", input_rank_ == 4 ? 2 : 1,
               input_rank_, shape_str(x.shape()));
  if (is_training()) {
    int64_t* count = num_batches_tracked.data<int64_t>();
    if (num_batches_tracked.device().is_cuda()) {
      cuda::batch_norm_count_batch(count);  // on the device: no host round trip per step
    } else {
      ++*count;
    }
  }
  return ops::batch_norm(x, running_mean, running_var, weight, bias, is_training(), momentum, eps);
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  FLEXNN_CHECK(module != nullptr, "Sequential: cannot add a null module");
  register_module(std::to_string(size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, child] : named_children()) y = child->forward(y);
  return y;
}

}  // namespace flexnn::nn
