// fmnist-small's construction and forward.
#include "models/fmnist_small.hpp"

namespace flexnn::models {

FmnistSmall::FmnistSmall(const FmnistSmallOptions& o, Generator& gen)
    : normalize(register_module("normalize", std::make_shared<nn::Normalize>(o.mean, o.std))) {
  FLEXNN_CHECK(o.mean.size() == 1, "fmnist-small: expects grayscale input, so 1 mean and 1 std, found {} and {}",
               o.mean.size(), o.std.size());
  flex = register_module("flex", std::make_shared<nn::FlexibleConv2d>(
                                     nn::FlexibleConv2dOptions{.in_channels = 1,
                                                               .out_channels = 12,
                                                               .kernel = 5,
                                                               .pool = {5, 1, 0},
                                                               .input_size = kImageSize,
                                                               .mode = o.flex,
                                                               .sharpness = o.sharpness,
                                                               .threshold_mean = o.threshold_mean,
                                                               .threshold_std = o.threshold_std,
                                                               .uniform_threshold = o.uniform_threshold,
                                                               .freeze_threshold = o.freeze_threshold},
                                     gen));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(12 * 24 * 24, 120, true, gen));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(120, 60, true, gen));
  out = register_module("out", std::make_shared<nn::Linear>(60, kClasses, true, gen));
}

Tensor FmnistSmall::forward(const Tensor& x) {
  Tensor h = ops::relu(flex->forward(normalize->forward(x)));
  h = ops::relu(fc1->forward(h.flatten(1)));
  h = ops::relu(fc2->forward(h));
  return out->forward(h);
}

}  // namespace flexnn::models
