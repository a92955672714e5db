// Parameter initialisation, as torch.nn.init: PyTorch's default for Conv2d and Linear is
// kaiming_uniform with a = sqrt(5) for the weight, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the
// same bound for the bias.
#pragma once

#include "engine/generator.hpp"
#include "engine/tensor.hpp"

namespace flexnn::nn::init {

// fan_in of a weight [out, in, ...]: in times the receptive field size.
int64_t fan_in(const Shape& weight_shape);
// U(-bound, bound) with bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky_relu).
Tensor kaiming_uniform(const Shape& shape, double a, Generator& gen);
Tensor uniform(const Shape& shape, float low, float high, Generator& gen);

}  // namespace flexnn::nn::init
