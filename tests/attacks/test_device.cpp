// The attacks on a CUDA device (a real GPU, or the CPU emulation of CUDA every build has): FGSM,
// PGD, APGD, Square, the runner, EOT on a random-mask model and BPDA through the fused CUDA
// flexible layer give what they give on the CPU from the same weights and Philox streams (up to
// the backends' rounding: sign steps may differ where a gradient element is about 0).
#include <catch2/catch.hpp>

#include "attack_fixtures.hpp"
#include "attacks/worst_case.hpp"
#include "test_helpers.hpp"

#include <cmath>

namespace flexnn {
namespace {

// The fraction of elements of two equally shaped tensors that differ by more than 1e-5.
double fraction_apart(const Tensor& a, const Tensor& b) {
  const std::vector<float> u = a.to(kCPU).to_vector(), v = b.to(kCPU).to_vector();
  REQUIRE(u.size() == v.size());
  int64_t apart = 0;
  for (size_t i = 0; i < u.size(); ++i) apart += std::abs(u[i] - v[i]) > 1e-5f;
  return double(apart) / double(u.size());
}

}  // namespace

TEST_CASE("attacks on a CUDA device agree with the CPU", "[attacks][cuda]") {
  REQUIRE(cuda_available());
  constexpr int64_t N = 4, S = 6, K = 3;
  Generator init_cpu(5), init_cuda(5);
  testing::SmallNet cpu_model(S, K, init_cpu), cuda_model(S, K, init_cuda);
  cuda_model.to(kCUDA);
  cpu_model.eval(), cuda_model.eval();
  Generator data(6);
  const Tensor x = Tensor::rand({N, 1, S, S}, data);
  const std::vector<int64_t> y{0, 1, 2, 1};
  const Tensor labels = Tensor::from_indices(y, {N});
  const attacks::ThreatModel threat{.eps = 0.1f};

  const auto both = [&](const auto& attack) {
    Generator a(9), b(9);
    const Tensor on_cpu = attack(cpu_model, x, labels, a);
    const Tensor on_cuda = attack(cuda_model, x.to(kCUDA), labels.to(kCUDA), b);
    CHECK(on_cuda.device() == kCUDA);
    CHECK(a.offset() == b.offset());
    return fraction_apart(on_cpu, on_cuda);
  };
  CHECK(both([&](nn::Module& m, const Tensor& xs, const Tensor& ys, Generator&) {
          return attacks::fgsm(m, xs, ys, std::vector<float>{0.1f});
        }) < 0.02);
  CHECK(both([&](nn::Module& m, const Tensor& xs, const Tensor& ys, Generator& g) {
          return attacks::pgd(m, xs, ys, threat, {.steps = 3, .step_size = 0.03f, .restarts = 2}, {}, g).adversarial;
        }) < 0.05);
  CHECK(both([&](nn::Module& m, const Tensor& xs, const Tensor& ys, Generator& g) {
          return attacks::apgd(m, xs, ys, threat, {.iterations = 5}, {.loss = attacks::AttackLoss::dlr}, g)
              .adversarial;
        }) < 0.05);
  CHECK(both([&](nn::Module& m, const Tensor& xs, const Tensor& ys, Generator& g) {
          return attacks::square(m, xs, ys, threat, {.queries = 20}, g).adversarial;
        }) < 0.05);

  const datasets::ImageDataset set = testing::dataset_of(x, y, K);
  attacks::NamedAttackOptions options;
  options.pgd.steps = 2, options.apgd.iterations = 3, options.square.queries = 5;
  const std::vector<attacks::AttackSpec> suite = attacks::adaptive_suite(cpu_model, threat, options);
  const attacks::AttackReport on_cpu = attacks::run_attacks(cpu_model, set, suite);
  const attacks::AttackReport on_cuda = attacks::run_attacks(cuda_model, set, suite);
  REQUIRE(on_cuda.runs.size() == on_cpu.runs.size());
  CHECK(on_cuda.clean.correct == on_cpu.clean.correct);
  for (size_t r = 0; r < on_cpu.runs.size(); ++r) {
    CAPTURE(on_cpu.runs[r].name);
    for (int64_t i = 0; i < N; ++i) CHECK(on_cuda.runs[r].margin[i] == Approx(on_cpu.runs[r].margin[i]).margin(1e-3));
  }
}

TEST_CASE("EOT and BPDA work through the CUDA flexible layer", "[attacks][cuda]") {
  REQUIRE(cuda_available());
  constexpr int64_t N = 2, S = 6;
  Generator data(3);
  const Tensor x = Tensor::rand({N, 1, S, S}, data, 0.5f, 1.0f);
  const std::vector<int64_t> y{0, 1};

  // BPDA: the saturated gate of the BPDA test in test_gradient.cpp, on the device.
  Generator a(40), b(40);
  testing::FlexibleNet cpu_model(S, 2, nn::FlexMode::standard, 50.0f, a);
  testing::FlexibleNet cuda_model(S, 2, nn::FlexMode::standard, 50.0f, b);
  for (testing::FlexibleNet* net : {&cpu_model, &cuda_model}) {
    net->flex->conv->weight.fill_(0.0f);
    net->flex->conv->bias.fill_(0.0f);
    net->flex->threshold.fill_(0.0f);
    net->eval();
  }
  cuda_model.to(kCUDA);
  attacks::GradientOptions bpda{.loss = attacks::AttackLoss::margin};
  bpda.bpda_sharpness = 1.0f;
  const Tensor on_cpu = attacks::input_gradient(cpu_model, x, y, bpda).grad;
  const Tensor on_cuda = attacks::input_gradient(cuda_model, x.to(kCUDA), y, bpda).grad;
  double largest = 0;
  for (float v : on_cpu.to_vector()) largest = std::max(largest, double(std::abs(v)));
  REQUIRE(largest > 1e-2);  // BPDA's gradient, not the saturated gate's (about 0)
  CHECK(fraction_apart(on_cpu, on_cuda) == 0.0);

  // EOT on a random-mask model: the masks come from the layer's Philox stream on either device.
  Generator c(50), d(50);
  testing::FlexibleNet cpu_random(S, 3, nn::FlexMode::random, 50.0f, c);
  testing::FlexibleNet cuda_random(S, 3, nn::FlexMode::random, 50.0f, d);
  cuda_random.to(kCUDA);
  cpu_random.eval(), cuda_random.eval();
  const Tensor eot_cpu = attacks::input_gradient(cpu_random, x, y, {.eot_samples = 3}).grad;
  const Tensor eot_cuda = attacks::input_gradient(cuda_random, x.to(kCUDA), y, {.eot_samples = 3}).grad;
  CHECK(fraction_apart(eot_cpu, eot_cuda) == 0.0);
}

}  // namespace flexnn
