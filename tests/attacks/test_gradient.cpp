// Tests of the attack losses and the input-gradient oracle: the CE, DLR and margin losses and
// their logit gradients against their formulas and finite differences; the input gradient of a
// linear classifier in closed form; EOT averaging lowering the gradient's variance on a model with
// a random-mask flexible layer; BPDA passing a gradient through a saturated gate where the plain
// gradient is about 0, equal to the gradient of the same layer with the softer sharpness.
#include <catch2/catch.hpp>

#include "attack_fixtures.hpp"
#include "attacks/gradient.hpp"
#include "engine/ops/gate_backward.hpp"
#include "test_helpers.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace flexnn {
namespace {

using Catch::Matchers::Contains;
using testing::error_message;

// Σ over elements of the variance across estimates (each a flattened gradient).
double total_variance(const std::vector<std::vector<float>>& estimates) {
  const size_t m = estimates.size(), d = estimates[0].size();
  double total = 0;
  for (size_t e = 0; e < d; ++e) {
    double mean = 0, squares = 0;
    for (const auto& g : estimates) mean += g[e];
    mean /= double(m);
    for (const auto& g : estimates) squares += (g[e] - mean) * (g[e] - mean);
    total += squares / double(m - 1);
  }
  return total;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::abs(x)));
  return m;
}

}  // namespace

TEST_CASE("attack losses match their formulas, with logit gradients matching finite differences",
          "[attacks][gradient]") {
  constexpr int64_t N = 5, K = 4;
  Generator gen(8);
  const std::vector<float> z = Tensor::randn({N, K}, gen, 0.0f, 2.0f).to_vector();
  const std::vector<int64_t> y{0, 3, 1, 2, 1};
  for (const attacks::AttackLoss loss :
       {attacks::AttackLoss::cross_entropy, attacks::AttackLoss::dlr, attacks::AttackLoss::margin}) {
    CAPTURE(attacks::attack_loss_name(loss));
    const attacks::LossValues v = attacks::attack_loss(z, y, loss, true);
    REQUIRE(v.loss.size() == N);
    REQUIRE(v.grad.size() == N * K);
    for (int64_t i = 0; i < N; ++i) {
      const float* zi = z.data() + i * K;
      std::vector<double> sorted(zi, zi + K);
      std::sort(sorted.rbegin(), sorted.rend());
      double rival = -1e30, lse = 0;
      for (int64_t k = 0; k < K; ++k) {
        if (k != y[i]) rival = std::max(rival, double(zi[k]));
        lse += std::exp(double(zi[k]));
      }
      const double margin = zi[y[i]] - rival;
      const double expected = loss == attacks::AttackLoss::cross_entropy ? std::log(lse) - zi[y[i]]
                              : loss == attacks::AttackLoss::dlr         ? -margin / (sorted[0] - sorted[2] + 1e-12)
                                                                         : -margin;
      CAPTURE(i);
      CHECK(v.loss[i] == Approx(expected).epsilon(1e-6));
      CHECK(v.margin[i] == Approx(margin).epsilon(1e-6));
      CHECK(v.correct[i] == (margin > 0));
      for (int64_t k = 0; k < K; ++k) {
        constexpr float h = 1e-2f;
        std::vector<float> up = z, down = z;
        up[i * K + k] += h, down[i * K + k] -= h;
        const double numeric = (double(attacks::attack_loss(up, y, loss, false).loss[i]) -
                                double(attacks::attack_loss(down, y, loss, false).loss[i])) /
                               (2.0 * h);
        CAPTURE(k);
        CHECK(v.grad[i * K + k] == Approx(numeric).margin(2e-4).epsilon(2e-3));
      }
    }
  }
  // Ties: the verdict is the first maximum's, as argmax gives it.
  const std::vector<float> tied{1.0f, 2.0f, 2.0f};
  CHECK(attacks::verdicts(tied, std::vector<int64_t>{1}).correct[0] == 1);
  CHECK(attacks::verdicts(tied, std::vector<int64_t>{2}).correct[0] == 0);
  CHECK(attacks::verdicts(tied, std::vector<int64_t>{2}).margin[0] == 0.0f);

  const std::vector<float> two_classes{0.5f, -0.5f};
  const std::vector<int64_t> zero{0}, three{3}, two_labels{0, 1};
  const auto margin = attacks::AttackLoss::margin;
  CHECK_THAT(error_message([&] { attacks::attack_loss(two_classes, zero, attacks::AttackLoss::dlr, true); }),
             Contains("DLR") && Contains("at least 3 classes") && Contains("has 2"));
  CHECK_THAT(error_message([&] { attacks::attack_loss(tied, three, margin, false); }),
             Contains("label 3") && Contains("[0, 3)"));
  CHECK_THAT(error_message([&] { attacks::attack_loss(tied, two_labels, margin, false); }),
             Contains("3 logits for 2 labels"));
  CHECK(attacks::parse_attack_loss("ce") == attacks::AttackLoss::cross_entropy);
  CHECK(attacks::parse_attack_loss("dlr") == attacks::AttackLoss::dlr);
  CHECK_THAT(error_message([] { attacks::parse_attack_loss("CE"); }),
             Contains("'CE'") && Contains("ce, dlr or margin"));
}

TEST_CASE("input_gradient of a linear classifier is the loss's logit gradient times W", "[attacks][gradient]") {
  constexpr int64_t N = 3, D = 12, K = 5;
  Generator gen(14);
  const std::vector<float> w = Tensor::randn({K, D}, gen).to_vector();
  testing::LinearClassifier model(Tensor::from_vector(w, {K, D}), Tensor::randn({K}, gen));
  model.eval();
  const Tensor x = Tensor::rand({N, 1, 3, 4}, gen);
  const std::vector<int64_t> y{4, 0, 2};
  for (const attacks::AttackLoss loss : {attacks::AttackLoss::cross_entropy, attacks::AttackLoss::dlr}) {
    const attacks::LossGradient g = attacks::input_gradient(model, x, y, {.loss = loss});
    std::vector<float> logits;
    {
      NoGradGuard no_grad;
      logits = model(x).to_vector();
    }
    const attacks::LossValues v = attacks::attack_loss(logits, y, loss, true);
    const std::vector<float> grad = g.grad.to_vector();
    REQUIRE(g.grad.shape() == x.shape());
    for (int64_t i = 0; i < N; ++i)
      for (int64_t e = 0; e < D; ++e) {
        double expected = 0;
        for (int64_t k = 0; k < K; ++k) expected += double(v.grad[i * K + k]) * w[k * D + e];
        CHECK(grad[i * D + e] == Approx(expected).margin(1e-6).epsilon(1e-5));
      }
    CHECK(g.values.loss == v.loss);
    CHECK(g.values.correct == v.correct);
  }
  // The parameters are frozen for the pass and restored.
  CHECK(model.weight.requires_grad());
  CHECK_FALSE(model.weight.grad().defined());
  // EOT on a deterministic model averages identical passes.
  const attacks::LossGradient once = attacks::input_gradient(model, x, y, {});
  const attacks::LossGradient four = attacks::input_gradient(model, x, y, {.eot_samples = 4});
  const std::vector<float> a = once.grad.to_vector(), b = four.grad.to_vector();
  for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).margin(1e-7).epsilon(1e-6));
  CHECK_THAT(error_message([&] { attacks::input_gradient(model, x, y, {.eot_samples = 0}); }),
             Contains("EOT") && Contains("found 0"));
  CHECK_THAT(error_message([&] { attacks::input_gradient(model, x, std::vector<int64_t>{1}, {}); }),
             Contains("1 labels") && Contains("[3, 1, 3, 4]"));
}

TEST_CASE("EOT lowers the variance of the input gradient of a random-mask model", "[attacks][gradient]") {
  constexpr int64_t N = 4, S = 8, M = 30, K_EOT = 8;
  Generator gen(22);
  testing::FlexibleNet model(S, 3, nn::FlexMode::random, 50.0f, gen);
  model.eval();
  const Tensor x = Tensor::rand({N, 1, S, S}, gen);
  const std::vector<int64_t> y{0, 1, 2, 0};
  std::vector<std::vector<float>> single, averaged;
  for (int m = 0; m < M; ++m) {
    single.push_back(attacks::input_gradient(model, x, y, {}).grad.to_vector());
    averaged.push_back(attacks::input_gradient(model, x, y, {.eot_samples = K_EOT}).grad.to_vector());
  }
  const double v1 = total_variance(single), vk = total_variance(averaged);
  CAPTURE(v1, vk);
  REQUIRE(v1 > 1e-6);  // the masks make the gradient random
  // Averages of K independent passes have 1/K of the variance; with 30 estimates each, a factor
  // of 4 (of the expected 8) leaves room for sampling noise but not for a wrong average.
  CHECK(vk < v1 / 4);
  CHECK(vk > v1 / 32);
}

// A flexible layer whose gate is saturated on the convolution branch (m ≥ 0.5 > T = 0, s = 50:
// g ≤ σ(−25)) and whose convolution ignores its input (zero weights): the plain input gradient is
// about 0. With BPDA's backward sharpness 1 the gradient is the one of the same layer at sharpness
// 1; with two classes the margin loss's logit gradient is constant, so the two must be equal.
TEST_CASE("BPDA gives a gradient through a saturated gate where the plain gradient is about 0",
          "[attacks][gradient]") {
  constexpr int64_t N = 3, S = 6;
  Generator gen(40);
  testing::FlexibleNet hard(S, 2, nn::FlexMode::standard, 50.0f, gen);
  testing::FlexibleNet soft(S, 2, nn::FlexMode::standard, 1.0f, gen);
  for (testing::FlexibleNet* net : {&hard, &soft}) {
    net->flex->conv->weight.fill_(0.0f);
    net->flex->conv->bias.fill_(0.0f);
    net->flex->threshold.fill_(0.0f);
    net->fc->weight.copy_(hard.fc->weight);
    net->fc->bias.copy_(hard.fc->bias);
    net->eval();
  }
  const Tensor x = Tensor::rand({N, 1, S, S}, gen, 0.5f, 1.0f);
  const std::vector<int64_t> y{0, 1, 1};
  const attacks::GradientOptions margin{.loss = attacks::AttackLoss::margin};
  attacks::GradientOptions bpda = margin;
  bpda.bpda_sharpness = 1.0f;

  const std::vector<float> plain = attacks::input_gradient(hard, x, y, margin).grad.to_vector();
  const std::vector<float> through = attacks::input_gradient(hard, x, y, bpda).grad.to_vector();
  const std::vector<float> expected = attacks::input_gradient(soft, x, y, margin).grad.to_vector();
  CHECK(max_abs(plain) < 1e-6);
  CHECK(max_abs(through) > 1e-2);
  REQUIRE(through.size() == expected.size());
  for (size_t i = 0; i < through.size(); ++i) CHECK(through[i] == Approx(expected[i]).margin(1e-7).epsilon(1e-5));
  // The forward is the hard model's: the logits are unchanged by BPDA.
  CHECK(testing::bit_identical(attacks::input_gradient(hard, x, y, bpda).values.margin,
                               attacks::input_gradient(hard, x, y, margin).values.margin));
  // The guard is scoped: afterwards the plain gradient is back.
  CHECK(testing::bit_identical(attacks::input_gradient(hard, x, y, margin).grad.to_vector(), plain));
  CHECK_THAT(error_message([] { ops::GateBackwardSharpness bad(0.0f); }), Contains("positive"));
  CHECK_THAT(error_message([] { ops::GateBackwardSharpness bad(NAN); }), Contains("positive"));
}

TEST_CASE("zero_gradient_examples counts the correctly classified examples whose gradient is exactly 0",
          "[attacks][gradient]") {
  const std::vector<float> v{0.0f, 0.0f, 0.0f, 0.0f,  -0.0f, 0.0f, 0.0f, 0.0f,
                             0.0f, 1e-40f, 0.0f, 0.0f, 0.5f, -0.5f, 0.0f, 0.0f};
  attacks::LossGradient g{.grad = Tensor::from_vector(v, {4, 1, 2, 2})};
  g.values.correct = {1, 1, 1, 1};
  CHECK(attacks::zero_gradient_examples(g) == 2);
  g.values.correct = {1, 0, 1, 1};
  CHECK(attacks::zero_gradient_examples(g) == 1);
  g.grad = Tensor::zeros({4, 1, 2, 2});
  CHECK(attacks::zero_gradient_examples(g) == 3);
  g.values.correct = {1};
  CHECK_THAT(error_message([&] { attacks::zero_gradient_examples(g); }), Contains("1 verdicts for 4"));
}

}  // namespace flexnn
