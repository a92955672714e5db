// Initialisers drawing from the Philox stream.
#include "engine/nn/init.hpp"

#include <cmath>

namespace flexnn::nn::init {

int64_t fan_in(const Shape& weight_shape) {
  FLEXNN_CHECK(weight_shape.size() >= 2, "fan_in: a weight needs at least 2 dimensions, found {}",
               shape_str(weight_shape));
  int64_t fan = weight_shape[1];
  for (size_t d = 2; d < weight_shape.size(); ++d) fan *= weight_shape[d];
  return fan;
}

Tensor kaiming_uniform(const Shape& shape, double a, Generator& gen) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const auto bound = static_cast<float>(gain * std::sqrt(3.0 / static_cast<double>(fan_in(shape))));
  return Tensor::rand(shape, gen, -bound, bound);
}

Tensor uniform(const Shape& shape, float low, float high, Generator& gen) { return Tensor::rand(shape, gen, low, high); }

}  // namespace flexnn::nn::init
