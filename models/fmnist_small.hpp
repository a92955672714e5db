// fmnist-small: the paper's small Fashion-MNIST network, as in the authors' code: Normalize →
// FlexibleConv2d(1→12, conv 5×5, pool 5×5 stride 1, the pooled map broadcast to the 12 channels)
// → ReLU → Flatten (6912) → Linear(6912,120) → ReLU → Linear(120,60) → ReLU → Linear(60,10).
// Parameter names: flex.conv.weight, flex.conv.bias, flex.threshold, fc1.*, fc2.*, out.*.
#pragma once

#include "engine/nn/flexible.hpp"
#include "engine/nn/layers.hpp"

#include <memory>
#include <vector>

namespace flexnn::models {

struct FmnistSmallOptions {
  nn::FlexMode flex = nn::FlexMode::standard;
  float sharpness = 50.0f;
  float threshold_mean = 0.5f, threshold_std = 0.1f;
  float uniform_threshold = 0.1f;
  bool freeze_threshold = false;
  std::vector<float> mean{0.2860f}, std{0.3530f};  // input normalisation, part of the model
};

class FmnistSmall : public nn::Module {
 public:
  static constexpr int64_t kImageSize = 28, kClasses = 10;
  explicit FmnistSmall(const FmnistSmallOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Normalize> normalize;
  std::shared_ptr<nn::FlexibleConv2d> flex;
  std::shared_ptr<nn::Linear> fc1, fc2, out;
};

}  // namespace flexnn::models
