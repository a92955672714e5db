// The small CNN's layers, in torch.nn.Sequential naming: 0.weight, 0.bias, 4.weight, 4.bias.
#include "models/small_cnn.hpp"

namespace flexnn::models {

std::shared_ptr<nn::Sequential> make_small_cnn(int64_t in_channels, int64_t image_size, int64_t classes,
                                               int64_t channels, Generator& gen) {
  const int64_t pooled = image_size / 2;
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(in_channels, channels, 3, 1, 1, true, gen),
      std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(channels * pooled * pooled, classes, true, gen),
  });
}

}  // namespace flexnn::models
