// conv2d-surrogate: the paper's black-box source model ("Conv2d Model" of the Supporting
// Information, the PGD black-box attacks' gradient estimator): Normalize → Conv(3,64,3,p1) → ReLU →
// Conv(64,64,3,p1) → ReLU → MaxPool2 → Conv(64,128,3,p1) → ReLU → Conv(128,128,3,p1) → ReLU →
// MaxPool2 → Flatten (8192) → Linear(8192,256) → ReLU → Linear(256,10), for 32x32 RGB (CIFAR-10).
// Parameter names: conv1.* … conv4.*, fc1.*, fc2.* (the usual PyTorch layout of this network; the
// authors' models/conv2model.py is not published).
#pragma once

#include "engine/nn/layers.hpp"

#include <memory>
#include <vector>

namespace flexnn::models {

struct Conv2dSurrogateOptions {
  // The same input normalisation as vgg16's (the authors' ImageNet statistics), part of the model.
  std::vector<float> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
};

class Conv2dSurrogate : public nn::Module {
 public:
  static constexpr int64_t kImageSize = 32, kClasses = 10;
  explicit Conv2dSurrogate(const Conv2dSurrogateOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<nn::Normalize> normalize;
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3, conv4;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

}  // namespace flexnn::models
