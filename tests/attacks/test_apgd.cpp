// Tests of APGD: the checkpoints and the step-size control against hand-computed schedules
// (the halving conditions one by one), and the attack itself: in the ε-ball and [0, 1], the
// analytic worst case of a two-class linear classifier reached with the CE loss, most clearly
// breakable examples of a multiclass one broken with the DLR loss; errors.
#include <catch2/catch.hpp>

#include "attack_fixtures.hpp"
#include "attacks/apgd.hpp"
#include "test_helpers.hpp"

#include <cmath>

namespace flexnn {
namespace {

using Catch::Matchers::Contains;
using testing::error_message;

// Runs the control over per-iteration losses (losses[k][i]: example i after iteration k + 1) and
// returns each example's step after every iteration.
using Flags = std::vector<std::vector<uint8_t>>;
std::vector<std::vector<float>> steps_over(const std::vector<float>& initial,
                                           const std::vector<std::vector<float>>& losses, Flags* halved,
                                           Flags* improved) {
  attacks::ApgdStepControl control(initial, static_cast<int>(losses.size()), 2.0f, 0.75f);
  std::vector<std::vector<float>> out;
  for (const std::vector<float>& l : losses) {
    const attacks::ApgdStepControl::Update u = control.update(l);
    halved->push_back(u.halved);
    improved->push_back(u.improved);
    out.push_back(control.step());
  }
  return out;
}

}  // namespace

TEST_CASE("apgd checkpoints follow Croce and Hein's schedule", "[attacks][apgd]") {
  // p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06); w_j = ⌈p_j·N⌉.
  CHECK(attacks::apgd_checkpoints(100) == std::vector<int>{22, 41, 57, 70, 80, 87, 93, 99});
  CHECK(attacks::apgd_checkpoints(20) == std::vector<int>{5, 9, 12, 14, 16, 18, 19, 20});
  CHECK(attacks::apgd_checkpoints(10) == std::vector<int>{3, 5, 6, 7, 8, 9, 10});
  CHECK(attacks::apgd_checkpoints(1000) == std::vector<int>{220, 410, 570, 700, 800, 870, 930, 990});
  CHECK(attacks::apgd_checkpoints(1) == std::vector<int>{1});
  CHECK_THAT(error_message([] { attacks::apgd_checkpoints(0); }), Contains("at least 1 iteration"));
}

// N = 20: checkpoints 5, 9, 12, 14, 16, 18, 19, 20. ρ = 0.75, η₀ = 2.
TEST_CASE("apgd halves an example's step exactly when a condition holds at a checkpoint", "[attacks][apgd]") {
  constexpr int N = 20;
  // A: the loss rises at every step: neither condition ever holds.
  // B: the loss never changes: condition 1 (no increase) at every checkpoint.
  // C: f(x⁰) = 10, then 0.1·k: rising steps but never a new best. At w = 5 condition 2 holds (not
  //    halved before, best unchanged); the restart from x_max (loss 10) makes step 6 a fall, so at
  //    9 three rises in four steps fail condition 1 (3 < 0.75·4 is false) and condition 2 is off
  //    (halved at 5); at 12 condition 2 again; from then on each interval's first step falls from
  //    10 and condition 1 holds (1 < 0.75·2, then 0 < 0.75·1).
  // D: rises except at step 7 (6 → 5.5): at 9, three rises in four is not fewer than 0.75·4 (the
  //    reference code's "≤" would halve here), and the best improved: no halving, ever.
  std::vector<std::vector<float>> losses(N);
  for (int k = 1; k <= N; ++k) {
    const float d = k == 6 ? 6.0f : k == 7 ? 5.5f : k <= 9 ? float(k == 8 ? 7 : k == 9 ? 8 : k) : float(k - 1);
    losses[k - 1] = {float(k), 1.0f, 0.1f * float(k), d};
  }
  Flags halved, improved;
  const std::vector<std::vector<float>> steps = steps_over({0.0f, 1.0f, 10.0f, 0.0f}, losses, &halved, &improved);
  const std::vector<int> checkpoints{5, 9, 12, 14, 16, 18, 19, 20};
  const std::vector<int> c_halves{5, 12, 14, 16, 18, 19, 20};
  float b = 2.0f, c = 2.0f;
  for (int k = 1; k <= N; ++k) {
    CAPTURE(k);
    const bool checkpoint = std::find(checkpoints.begin(), checkpoints.end(), k) != checkpoints.end();
    const bool c_halved = std::find(c_halves.begin(), c_halves.end(), k) != c_halves.end();
    if (checkpoint) b /= 2;
    if (c_halved) c /= 2;
    CHECK(halved[k - 1] == std::vector<uint8_t>{0, checkpoint, c_halved, 0});
    CHECK(steps[k - 1] == std::vector<float>{2.0f, b, c, 2.0f});
    CHECK(improved[k - 1][0] == 1);
    CHECK(improved[k - 1][1] == 0);
    CHECK(improved[k - 1][2] == 0);
    CHECK(improved[k - 1][3] == (k != 7));
  }
  CHECK(steps.back() == std::vector<float>{2.0f, 2.0f / 256, 2.0f / 128, 2.0f});
}

TEST_CASE("apgd stays in the eps-ball and [0, 1] and reaches the linear worst case", "[attacks][apgd]") {
  constexpr int64_t N = 40, S = 4;
  for (const int64_t classes : {2, 4}) {
    CAPTURE(classes);
    Generator gen(50 + classes);
    const float eps = 0.1f;
    const testing::LinearProblem p = testing::linear_problem(classes, N, S, eps, gen);
    testing::LinearClassifier& model = *p.model;
    const Tensor& x = p.x;
    const std::vector<int64_t>& y = p.y;
    const attacks::GradientOptions loss{.loss = classes == 2 ? attacks::AttackLoss::cross_entropy
                                                             : attacks::AttackLoss::dlr};
    const Tensor adv = attacks::apgd(model, x, Tensor::from_indices(y, {N}), {.eps = eps}, {.iterations = 50}, loss,
                                     gen)
                           .adversarial;
    // Two classes: the highest-loss point is the optimum.
    testing::check_linear_worst_case(p, adv, eps, false);
  }
}

TEST_CASE("apgd rejects bad settings with clear errors", "[attacks][apgd]") {
  Generator gen(2);
  testing::LinearClassifier two(Tensor::randn({2, 16}, gen), Tensor::zeros({2}));
  const Tensor x = Tensor::rand({2, 1, 4, 4}, gen);
  const Tensor labels = Tensor::from_indices({0, 1}, {2});
  const attacks::ThreatModel threat{.eps = 0.1f};
  CHECK_THAT(error_message([&] { attacks::apgd(two, x, labels, threat, {}, {.loss = attacks::AttackLoss::dlr}, gen); }),
             Contains("DLR") && Contains("at least 3 classes"));
  CHECK_THAT(error_message([&] { attacks::apgd(two, x, labels, threat, {.iterations = 0}, {}, gen); }),
             Contains("iterations"));
  CHECK_THAT(error_message([&] { attacks::apgd(two, x, labels, threat, {.momentum = 1.5f}, {}, gen); }),
             Contains("momentum"));
  CHECK_THAT(error_message([&] { attacks::apgd(two, x, labels, threat, {.rho = 0.0f}, {}, gen); }), Contains("rho"));
}

}  // namespace flexnn
