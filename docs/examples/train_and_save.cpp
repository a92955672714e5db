// The embedding guide's complete program: build a CNN, train it with SGD, save it, load it back.
// Built and run by the tests (CTest `example_train_and_save`), so the guide cannot go stale.
#include "datasets/synthetic.hpp"
#include "engine/flexnn.hpp"

#include <cstdio>

int main() {
  using namespace flexnn;
  manual_seed(0);
  Generator data_gen(1);
  const datasets::LabelledImages data = datasets::make_bars(1024, 16, data_gen);

  auto net = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(1, 8, 3, 1, 1), std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(8 * 8 * 8, datasets::kBarClasses)});
  optim::SGD sgd(net->parameters(), {.lr = 0.05f, .momentum = 0.9f});

  for (int epoch = 0; epoch < 5; ++epoch) {
    for (int64_t start = 0; start < 1024; start += 64) {
      const Tensor images = ops::slice(data.images, 0, start, start + 64);
      const Tensor labels = Tensor::from_indices(
          {data.labels.data<int64_t>() + start, data.labels.data<int64_t>() + start + 64}, {64});
      Tensor loss = ops::cross_entropy((*net)(images), labels);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
  }

  save_checkpoint(*net, "train_and_save.safetensors", {{"note", "embedding example"}});
  net->eval();
  NoGradGuard no_grad;
  const Tensor predicted = ops::argmax((*net)(data.images), 1);
  int64_t correct = 0;
  for (int64_t i = 0; i < 1024; ++i) correct += predicted.data<int64_t>()[i] == data.labels.data<int64_t>()[i];
  std::printf("training accuracy %.1f%%\n", 100.0 * static_cast<double>(correct) / 1024);
  return correct > 900 ? 0 : 1;
}
