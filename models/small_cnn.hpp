// A small CNN for demos and tests: Conv2d(3x3, pad 1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear.
#pragma once

#include "engine/nn/layers.hpp"

#include <memory>

namespace flexnn::models {

std::shared_ptr<nn::Sequential> make_small_cnn(int64_t in_channels, int64_t image_size, int64_t classes,
                                               int64_t channels = 8, Generator& gen = default_generator());

}  // namespace flexnn::models
