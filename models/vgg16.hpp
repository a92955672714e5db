// vgg16: the paper's VGG16 (Supporting Information, "Single Layer Baseline/Flexible VGG16") in the
// authors' layout (network_definitions.py): Normalize, five nn::Sequential blocks of Conv2d →
// BatchNorm2d(momentum 0.1) → ReLU units, each block but the first ending in MaxPool2d(2, 2) and every
// block in Dropout2d (0.3, 0.4, 0.4, 0.4, 0.5), then the classifier Linear(512,100) → Dropout(0.5) →
// BatchNorm1d(100) → ReLU → Dropout(0.5) → Linear(100,10). Block 1's second unit is a flexible layer,
// conv 64→64 3×3 unpadded ∥ MaxPool2d(3, 1, 0) of its input (32 → 30).
//
// flex: none (that layer's convolution alone, the paper's baseline), single (that layer flexible),
// all (every convolution flexible: the others pool 3×3, stride 1, padding 1, so shapes are kept, and
// where input and output channels differ the pool takes the convolution's output, our choice: the
// paper does not say). Inputs larger than 32×32 (Imagenette) end block 5 with maps larger than 1×1,
// averaged to 1×1 (adaptive average pooling) before the classifier.
//
// Parameter names are PyTorch's for the authors' modules: block1.0.weight, block1.1.running_mean, …,
// fc.5.bias. Their flexible layer names its convolution t_1 and does not save its threshold; ours is
// block1.3.conv.weight / .bias and block1.3.threshold. In `all`, every convolution is a flexible layer:
// blockB.I.conv.weight, blockB.I.threshold.
#pragma once

#include "engine/nn/flexible.hpp"
#include "engine/nn/layers.hpp"

#include <array>
#include <memory>
#include <string_view>
#include <vector>

namespace flexnn::models {

enum class Vgg16Flex { none, single, all };
Vgg16Flex parse_vgg16_flex(std::string_view name);  // an error lists the valid names
std::string_view vgg16_flex_name(Vgg16Flex flex);

struct Vgg16Options {
  Vgg16Flex flex = Vgg16Flex::single;
  nn::FlexMode mode = nn::FlexMode::standard;  // the flexible layers' gate; never none (that is flex none)
  float sharpness = 50.0f;
  float threshold_mean = 0.0f, threshold_std = 1.0f;  // T ~ N(0, 1), the authors' VGG16 draw
  float uniform_threshold = 0.1f;
  bool freeze_threshold = false;
  int64_t image_size = 32;  // square RGB inputs; at least 18, so that block 5 ends with 1x1 maps or more
  // The authors' normalisation (ImageNet statistics, used for CIFAR-10 as well), part of the model.
  std::vector<float> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
};

// Throws a flexnn::Error naming the first option out of range.
void validate(const Vgg16Options& options);

class Vgg16 : public nn::Module {
 public:
  static constexpr int64_t kClasses = 10;
  explicit Vgg16(const Vgg16Options& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  const Vgg16Options& options() const { return options_; }
  // The side of block 5's output maps (1 for 32x32 inputs).
  int64_t feature_size() const { return feature_size_; }

  std::shared_ptr<nn::Normalize> normalize;
  std::array<std::shared_ptr<nn::Sequential>, 5> blocks;  // block1 … block5
  std::shared_ptr<nn::Sequential> fc;

 private:
  Vgg16Options options_;
  int64_t feature_size_ = 1;
};

}  // namespace flexnn::models
