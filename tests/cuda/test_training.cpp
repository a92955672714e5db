// Training on the CUDA device end to end: fmnist-small trained for several SGD steps on the device
// follows the same trajectory as on the CPU from the same initialisation and data (losses and
// weights within rounding), in the baseline, learned-threshold and random-mask modes.
#include "engine/flexnn.hpp"
#include "models/registry.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace flexnn;

namespace {

struct Trajectory {
  std::vector<float> losses;
  nn::NamedTensors state;
};

// Steps of SGD (the paper's two groups: no weight decay on thresholds) on fixed random batches.
Trajectory train_steps(const std::string& flex, Device device, int steps) {
  manual_seed(5);
  const std::shared_ptr<nn::Module> model = models::build_model({{"model", "fmnist-small"}, {"flex", flex}});
  model->to(device);
  std::vector<Tensor> weights, thresholds;
  for (const auto& [name, p] : model->named_parameters())
    (name.ends_with("threshold") ? thresholds : weights).push_back(p);
  optim::SGD sgd({{weights, {0.01f, 0.9f, 0.006f}}, {thresholds, {0.01f, 0.9f, 0.0f}}});
  Generator data(17);
  Trajectory out;
  for (int step = 0; step < steps; ++step) {
    const Tensor images = Tensor::rand({6, 1, 28, 28}, data).to(device);
    std::vector<int64_t> labels;
    for (int i = 0; i < 6; ++i) labels.push_back((step * 7 + i * 3) % 10);
    const Tensor loss = ops::cross_entropy((*model)(images), Tensor::from_indices(labels, {6}, device));
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    out.losses.push_back(loss.item());
  }
  for (const auto& [name, t] : model->state()) out.state.emplace_back(name, t.to(kCPU));
  return out;
}

}  // namespace

TEST_CASE("fmnist-small trains on CUDA as it does on the CPU", "[cuda][training]") {
  for (const char* flex : {"none", "standard", "random"}) {
    CAPTURE(flex);
    const Trajectory cpu = train_steps(flex, kCPU, 4);
    const Trajectory cuda = train_steps(flex, kCUDA, 4);
    REQUIRE(cuda.losses.size() == cpu.losses.size());
    for (size_t i = 0; i < cpu.losses.size(); ++i) {
      CAPTURE(i);
      CHECK(std::isfinite(cpu.losses[i]));
      // Both devices sum in different orders (Winograd/direct convolution vs im2col GEMM), so
      // they agree to float rounding, amplified a little by four steps of momentum SGD.
      CHECK(cuda.losses[i] == Approx(cpu.losses[i]).epsilon(1e-4));
    }
    CHECK(cpu.losses.back() != cpu.losses.front());  // it did train
    REQUIRE(cuda.state.size() == cpu.state.size());
    for (size_t k = 0; k < cpu.state.size(); ++k) {
      CAPTURE(cpu.state[k].first);
      const std::vector<float> a = cpu.state[k].second.to_vector(), b = cuda.state[k].second.to_vector();
      REQUIRE(a.size() == b.size());
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - b[i]) / (1e-3 + std::abs(a[i])));
      CHECK(worst < 1e-3);
    }
  }
}
