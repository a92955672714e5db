// End-to-end training on the CPU: a small CNN learns a separable synthetic problem, and a
// network with batch norm and dropout trains to bit-identical weights with 1 and 2 threads.
#include "datasets/synthetic.hpp"
#include "engine/flexnn.hpp"
#include "models/small_cnn.hpp"

#include <catch2/catch.hpp>

using namespace flexnn;

namespace {

// One pass over the data in shuffled batches; returns the training accuracy seen during it.
double train_epoch(nn::Module& model, optim::SGD& sgd, const datasets::LabelledImages& data, int64_t batch,
                   Generator& gen) {
  const int64_t n = data.images.size(0);
  const std::vector<int64_t> order = gen.permutation(n);
  int64_t correct = 0;
  for (int64_t start = 0; start + batch <= n; start += batch) {
    const datasets::LabelledImages b = datasets::take(data, std::span(order).subspan(start, batch));
    sgd.zero_grad();
    Tensor logits = model(b.images);
    ops::cross_entropy(logits, b.labels).backward();
    sgd.step();
    Tensor predicted = ops::argmax(logits, 1);
    for (int64_t i = 0; i < batch; ++i) correct += predicted.data<int64_t>()[i] == b.labels.data<int64_t>()[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n / batch * batch);
}

}  // namespace

TEST_CASE("a small CNN learns the bars problem to at least 95% training accuracy", "[training]") {
  Generator gen(42);
  const datasets::LabelledImages data = datasets::make_bars(512, 12, gen);
  auto model = models::make_small_cnn(1, 12, datasets::kBarClasses, 8, gen);
  optim::SGD sgd(model->parameters(), {0.05f, 0.9f});
  double accuracy = 0;
  for (int epoch = 0; epoch < 15 && accuracy < 0.99; ++epoch) accuracy = train_epoch(*model, sgd, data, 32, gen);
  CHECK(accuracy >= 0.95);
}

TEST_CASE("same seed gives bit-identical weights with 1 and 2 threads", "[training][determinism]") {
  auto run = [](int threads) {
    const int previous = cpu::num_threads();
    cpu::set_num_threads(threads);
    Generator gen(7);
    const datasets::LabelledImages data = datasets::make_bars(96, 16, gen);
    auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
        std::make_shared<nn::Conv2d>(1, 16, 3, 1, 1, true, gen), std::make_shared<nn::BatchNorm2d>(16),
        std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Dropout2d>(0.2f, gen),
        std::make_shared<nn::Conv2d>(16, 32, 3, 1, 0, true, gen), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::AvgPool2d>(2), std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(32 * 3 * 3, 64, true, gen), std::make_shared<nn::BatchNorm1d>(64),
        std::make_shared<nn::Sigmoid>(), std::make_shared<nn::Dropout>(0.3f, gen),
        std::make_shared<nn::Linear>(64, datasets::kBarClasses, true, gen)});
    optim::SGD sgd(model->parameters(), {0.05f, 0.9f, 1e-3f});
    for (int epoch = 0; epoch < 2; ++epoch) train_epoch(*model, sgd, data, 32, gen);
    cpu::set_num_threads(previous);
    std::vector<std::vector<float>> weights;
    for (auto& [name, t] : model->named_parameters()) weights.push_back(t.to_vector());
    for (auto& [name, t] : model->named_buffers())
      if (t.dtype() == DType::Float32) weights.push_back(t.to_vector());
    return weights;
  };
  const auto one = run(1), two = run(2);
  REQUIRE(one.size() == two.size());
  for (size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
  const auto again = run(2);
  CHECK(again == two);
}
