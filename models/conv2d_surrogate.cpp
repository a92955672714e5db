// conv2d-surrogate's construction and forward.
#include "models/conv2d_surrogate.hpp"

namespace flexnn::models {

Conv2dSurrogate::Conv2dSurrogate(const Conv2dSurrogateOptions& o, Generator& gen) {
  FLEXNN_CHECK(o.mean.size() == 3 && o.std.size() == 3,
               "conv2d-surrogate: expects RGB input, so 3 means and 3 stds, found {} and {}", o.mean.size(),
               o.std.size());
  normalize = register_module("normalize", std::make_shared<nn::Normalize>(o.mean, o.std));
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(3, 64, 3, 1, 1, true, gen));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(64, 64, 3, 1, 1, true, gen));
  conv3 = register_module("conv3", std::make_shared<nn::Conv2d>(64, 128, 3, 1, 1, true, gen));
  conv4 = register_module("conv4", std::make_shared<nn::Conv2d>(128, 128, 3, 1, 1, true, gen));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(128 * 8 * 8, 256, true, gen));
  fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, kClasses, true, gen));
}

Tensor Conv2dSurrogate::forward(const Tensor& x) {
  FLEXNN_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == kImageSize && x.size(3) == kImageSize,
               "conv2d-surrogate: built for [N, 3, {}, {}] inputs, found {}", kImageSize, kImageSize,
               shape_str(x.shape()));
  Tensor h = normalize->forward(x);
  h = ops::relu(conv2->forward(ops::relu(conv1->forward(h))));
  h = ops::max_pool2d(h, 2, 2);
  h = ops::relu(conv4->forward(ops::relu(conv3->forward(h))));
  h = ops::max_pool2d(h, 2, 2);
  h = ops::relu(fc1->forward(h.flatten(1)));
  return fc2->forward(h);
}

}  // namespace flexnn::models
