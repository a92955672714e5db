// LabelledImages: an image tensor with its labels, and take(), which gathers a batch of
// examples by index (the step between a shuffled order and a training batch).
#pragma once

#include "engine/tensor.hpp"

#include <span>

namespace flexnn::datasets {

struct LabelledImages {
  Tensor images;  // [N, C, H, W], float32
  Tensor labels;  // [N], int64
};

// The examples at `indices`, in that order, copied into new tensors.
LabelledImages take(const LabelledImages& data, std::span<const int64_t> indices);

}  // namespace flexnn::datasets
