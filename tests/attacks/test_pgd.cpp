// Tests of PGD and its threat model: it never leaves the ε-ball or [0, 1] (L∞ with one or
// per-channel ε, L2) on random inputs; one TRADES step reproduced element by element (random start
// from the Philox stream, not clamped before the first step); the analytic worst case of linear
// classifiers reached; restarts keeping each example's worst case; errors.
#include <catch2/catch.hpp>

#include "attack_fixtures.hpp"
#include "attacks/pgd.hpp"
#include "test_helpers.hpp"

#include <algorithm>
#include <cmath>

namespace flexnn {
namespace {

using Catch::Matchers::Contains;
using testing::error_message;

// Uniform inputs in [0, 1] with about a fifth of the elements exactly 0 or 1, where the clamp binds.
Tensor random_inputs(const Shape& shape, Generator& gen) {
  std::vector<float> v = Tensor::rand(shape, gen).to_vector();
  const std::vector<float> pick = gen.uniform(static_cast<int64_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i)
    if (pick[i] < 0.1f) v[i] = 0.0f;
    else if (pick[i] < 0.2f) v[i] = 1.0f;
  return Tensor::from_vector(v, shape);
}

std::vector<int64_t> random_labels(int64_t n, int64_t classes, Generator& gen) {
  std::vector<int64_t> y;
  for (float u : gen.uniform(n)) y.push_back(std::min<int64_t>(static_cast<int64_t>(u * float(classes)), classes - 1));
  return y;
}

double mean_cross_entropy(nn::Module& model, const Tensor& x, const Tensor& labels) {
  NoGradGuard no_grad;
  return ops::cross_entropy(model(x), labels).item();
}

}  // namespace

TEST_CASE("pgd never leaves the eps-ball or [0, 1], and uses its budget", "[attacks][pgd]") {
  constexpr int64_t N = 6, C = 3, S = 6, K = 4;
  struct Case {
    const char* name;
    attacks::ThreatModel threat;
  };
  const std::vector<Case> cases{
      {"linf", {.norm = attacks::Norm::linf, .eps = 0.031f}},
      {"linf large", {.norm = attacks::Norm::linf, .eps = 0.3f}},
      {"linf per channel",
       {.norm = attacks::Norm::linf, .eps = 0.2f, .space = attacks::EpsSpace::normalized,
        .normalization_std = {0.1f, 0.5f, 1.0f}}},
      {"l2", {.norm = attacks::Norm::l2, .eps = 0.5f}},
      {"l2 large", {.norm = attacks::Norm::l2, .eps = 3.0f}},
  };
  for (uint64_t seed = 0; seed < 6; ++seed) {
    Generator gen(100 + seed);
    testing::SmallNet model(S, K, gen, C);
    model.eval();
    const Tensor x = random_inputs({N, C, S, S}, gen);
    const Tensor labels = Tensor::from_indices(random_labels(N, K, gen), {N});
    const std::vector<float> xv = x.to_vector();
    for (const Case& c : cases) {
      CAPTURE(seed, c.name);
      const std::vector<float> eps = c.threat.pixel(c.threat.eps);
      const attacks::PgdOptions options{.steps = 5, .step_size = c.threat.eps / 2, .random_start = true};
      const Tensor adv = attacks::pgd(model, x, labels, c.threat, options, {}, gen).adversarial;
      REQUIRE(adv.shape() == x.shape());
      const std::vector<float> av = adv.to_vector();
      double largest_move = 0;
      for (int64_t i = 0; i < N; ++i) {
        double squares = 0;
        for (int64_t e = 0; e < C * S * S; ++e) {
          const size_t k = static_cast<size_t>(i * C * S * S + e);
          REQUIRE(av[k] >= 0.0f);
          REQUIRE(av[k] <= 1.0f);
          const double d = double(av[k]) - double(xv[k]);
          squares += d * d;
          if (c.threat.norm == attacks::Norm::linf) {
            const double e_c = eps.size() == 1 ? eps[0] : eps[e / (S * S)];
            REQUIRE(std::abs(d) <= e_c + 1e-7);
            largest_move = std::max(largest_move, std::abs(d) / e_c);
          }
        }
        if (c.threat.norm == attacks::Norm::l2) {
          REQUIRE(std::sqrt(squares) <= eps[0] * (1 + 1e-5));
          largest_move = std::max(largest_move, std::sqrt(squares) / eps[0]);
        }
      }
      // Some example reached the ball's boundary (for a large L2 ball, the box [0, 1] binds first).
      CHECK(largest_move > (c.threat.norm == attacks::Norm::l2 && c.threat.eps > 1 ? 0.8 : 0.99));
      CHECK(mean_cross_entropy(model, adv, labels) > mean_cross_entropy(model, x, labels));
    }
  }
}

// One PGD step from the random start, element by element in float, against TRADES' formulas:
// x0 = x + U(−ε, ε) (the Philox stream, unclamped), x1 = clamp(x + clamp(x0 + α·sign(g) − x, −ε, ε), 0, 1).
// On a two-class linear classifier sign(g) = sign(w_other − w_label) wherever the rows differ.
TEST_CASE("pgd takes TRADES' step from an unclamped random start", "[attacks][pgd]") {
  constexpr int64_t N = 4, S = 5, D = S * S;
  constexpr float eps = 0.2f, step = 0.05f;
  Generator init(3);
  std::vector<float> w = Tensor::randn({2, D}, init).to_vector();
  for (int64_t i = 0; i < D; ++i)  // rows at least 0.1 apart everywhere, so the gradient's sign is sure
    if (std::abs(w[i] - w[D + i]) < 0.1f) w[D + i] = w[i] + (i % 2 ? 0.1f : -0.1f);
  testing::LinearClassifier model(Tensor::from_vector(w, {2, D}), Tensor::from_vector({0.1f, -0.1f}, {2}));
  model.eval();
  Generator data_gen(4);
  const Tensor x = random_inputs({N, 1, S, S}, data_gen);
  const std::vector<int64_t> y{0, 1, 1, 0};
  const std::vector<float> xv = x.to_vector();

  Generator attack_gen(77), replay(77);
  const attacks::ThreatModel threat{.eps = eps};
  const Tensor adv =
      attacks::pgd(model, x, Tensor::from_indices(y, {N}), threat, {.steps = 1, .step_size = step}, {}, attack_gen)
          .adversarial;
  const std::vector<float> u = Tensor::rand(x.shape(), replay, -1.0f, 1.0f).to_vector();
  CHECK(attack_gen.offset() == replay.offset());  // the start is the attack's only draw
  const std::vector<float> av = adv.to_vector();
  int unclamped_start_matters = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t e = 0; e < D; ++e) {
      const size_t k = static_cast<size_t>(i * D + e);
      const int64_t other = 1 - y[i];
      const float sign = w[other * D + e] > w[y[i] * D + e] ? 1.0f : -1.0f;
      const volatile float start_move = u[k] * eps;  // rounded on its own, as the ops do (no FMA)
      const float x0 = xv[k] + start_move;
      const float x1 = std::clamp(xv[k] + std::clamp(x0 + sign * step - xv[k], -eps, eps), 0.0f, 1.0f);
      const float x0_clamped = std::clamp(x0, 0.0f, 1.0f);
      const float x1_if_clamped_first =
          std::clamp(xv[k] + std::clamp(x0_clamped + sign * step - xv[k], -eps, eps), 0.0f, 1.0f);
      unclamped_start_matters += x1 != x1_if_clamped_first;
      CAPTURE(i, e, xv[k], u[k], sign);
      CHECK(av[k] == x1);
    }
  CHECK(unclamped_start_matters > 0);  // the test tells the two protocols apart
}

TEST_CASE("pgd reaches the analytic L-inf worst case of linear classifiers", "[attacks][pgd]") {
  constexpr int64_t N = 40, S = 4;
  for (const int64_t classes : {2, 4}) {
    CAPTURE(classes);
    Generator gen(classes);
    const float eps = 0.1f;
    const testing::LinearProblem p = testing::linear_problem(classes, N, S, eps, gen, random_inputs);
    testing::LinearClassifier& model = *p.model;
    const std::vector<int64_t>& y = p.y;
    const std::vector<double>& worst = p.worst;
    const auto broken = std::count_if(worst.begin(), worst.end(), [](double m) { return m < 0; });
    REQUIRE(broken > 5);      // the set has examples an optimal attack breaks,
    REQUIRE(broken < N - 5);  // and examples it cannot
    Generator attack_gen(9);
    const Tensor adv = attacks::pgd(model, p.x, Tensor::from_indices(y, {N}), {.eps = eps},
                                    {.steps = 20, .step_size = eps / 4}, {}, attack_gen)
                           .adversarial;
    const std::vector<double> reached = testing::margins(model, adv, y);
    int clearly_breakable = 0, broken_of_those = 0;
    for (int64_t i = 0; i < N; ++i) {
      CAPTURE(i, worst[i], reached[i]);
      CHECK(reached[i] >= worst[i] - 1e-5);  // nothing beats the optimum (a check of the fixture)
      if (classes == 2) CHECK(reached[i] == Approx(worst[i]).margin(1e-5));  // the optimal vertex
      if (worst[i] < -0.05) ++clearly_breakable, broken_of_those += reached[i] < 0;
    }
    // With two classes the gradient's sign is constant and PGD walks to the optimal vertex. With
    // more, the cross-entropy's ascent may settle at the vertex of another rival than the optimal
    // one (maximising a convex function over a box is local): most, not all, are found.
    CHECK(broken_of_those >= (classes == 2 ? clearly_breakable : clearly_breakable * 9 / 10));
  }
}

// Without the box binding (x in [0.3, 0.7], small ε), the L2 worst margin of a two-class linear
// classifier is m − ε‖w_y − w_other‖₂.
TEST_CASE("pgd reaches the analytic L2 worst case of a linear classifier", "[attacks][pgd]") {
  constexpr int64_t N = 10, S = 4, D = S * S;
  Generator gen(12);
  const std::vector<float> w = Tensor::randn({2, D}, gen).to_vector();
  testing::LinearClassifier model(Tensor::from_vector(w, {2, D}), Tensor::zeros({2}));
  model.eval();
  const Tensor x = Tensor::rand({N, 1, S, S}, gen, 0.3f, 0.7f);
  std::vector<int64_t> y;
  for (int64_t i = 0; i < N; ++i) y.push_back(i % 2);
  const std::vector<double> clean = testing::margins(model, x, y);
  double norm = 0;
  for (int64_t e = 0; e < D; ++e) norm += (double(w[e]) - w[D + e]) * (double(w[e]) - w[D + e]);
  norm = std::sqrt(norm);
  const float eps = 0.25f;
  const Tensor adv = attacks::pgd(model, x, Tensor::from_indices(y, {N}), {.norm = attacks::Norm::l2, .eps = eps},
                                  {.steps = 30, .step_size = eps}, {}, gen)
                         .adversarial;
  const std::vector<double> reached = testing::margins(model, adv, y);
  for (int64_t i = 0; i < N; ++i) {
    CAPTURE(i);
    CHECK(reached[i] == Approx(clean[i] - eps * norm).margin(1e-4));
  }
}

// With no steps, each restart is a random point of the ball: which examples it breaks is luck,
// and the restarts together must break every example any of them broke.
TEST_CASE("pgd restarts keep each example's worst case", "[attacks][pgd]") {
  constexpr int64_t N = 40, S = 6, K = 3, R = 4;
  Generator gen(31);
  testing::SmallNet model(S, K, gen);
  model.eval();
  const Tensor x = Tensor::rand({N, 1, S, S}, gen);
  std::vector<int64_t> y;
  {
    NoGradGuard no_grad;
    const Tensor p = ops::argmax(model(x), 1);
    y.assign(p.data<int64_t>(), p.data<int64_t>() + N);
  }
  const Tensor labels = Tensor::from_indices(y, {N});
  const attacks::ThreatModel threat{.eps = 0.5f};
  const attacks::PgdOptions single{.steps = 0, .restarts = 1};

  Generator replay(5);
  std::vector<std::vector<double>> runs;
  std::vector<Tensor> run_examples;
  for (int r = 0; r < R; ++r) {
    run_examples.push_back(attacks::pgd(model, x, labels, threat, single, {}, replay).adversarial);
    runs.push_back(testing::margins(model, run_examples.back(), y));
  }
  Generator attack_gen(5);
  attacks::PgdOptions restarts = single;
  restarts.restarts = R;
  const Tensor adv = attacks::pgd(model, x, labels, threat, restarts, {}, attack_gen).adversarial;
  const std::vector<double> kept = testing::margins(model, adv, y);

  int broken_by_some = 0, broken_by_all = 0;
  for (int64_t i = 0; i < N; ++i) {
    int broken = 0;
    double lowest = runs[0][i];
    for (int r = 0; r < R; ++r) broken += runs[r][i] < 0, lowest = std::min(lowest, runs[r][i]);
    broken_by_some += broken > 0;
    broken_by_all += broken == R;
    CAPTURE(i, broken, lowest, kept[i]);
    CHECK((kept[i] < 0) == (broken > 0));  // broken if any restart broke it
    if (broken == 0) CHECK(kept[i] == lowest);  // else the restart closest to breaking it
    // The kept example is exactly one restart's.
    const std::vector<float> row = ops::slice(adv, 0, i, i + 1).to_vector();
    bool from_a_restart = false;
    for (int r = 0; r < R; ++r) {
      const std::vector<float> candidate = ops::slice(run_examples[r], 0, i, i + 1).to_vector();
      from_a_restart = from_a_restart || testing::bit_identical(row, candidate);
    }
    CHECK(from_a_restart);
  }
  REQUIRE(broken_by_some > broken_by_all);  // the restarts disagree, so keeping the last would fail
}

TEST_CASE("pgd and the threat model reject bad settings with clear errors", "[attacks][pgd]") {
  Generator gen(1);
  testing::SmallNet model(5, 3, gen, 3);
  const Tensor x = Tensor::rand({2, 3, 5, 5}, gen);
  const Tensor labels = Tensor::from_indices({0, 2}, {2});
  const attacks::ThreatModel linf{.eps = 0.1f};
  CHECK_THAT(error_message([&] { attacks::pgd(model, x, labels, linf, {.restarts = 0}, {}, gen); }),
             Contains("restarts"));
  CHECK_THAT(error_message([&] { attacks::pgd(model, x, labels, linf, {.steps = -1}, {}, gen); }), Contains("steps"));
  CHECK_THAT(error_message([&] { attacks::pgd(model, x, labels, linf, {.step_size = NAN}, {}, gen); }),
             Contains("step size"));
  CHECK_THAT(error_message([&] { attacks::pgd(model, x, Tensor::from_indices({0}, {1}), linf, {}, {}, gen); }),
             Contains("1 labels") && Contains("[2, 3, 5, 5]"));
  const attacks::ThreatModel l2_per_channel{.norm = attacks::Norm::l2, .eps = 0.1f,
                                            .space = attacks::EpsSpace::normalized,
                                            .normalization_std = {0.2f, 0.3f, 0.4f}};
  CHECK_THAT(error_message([&] { attacks::pgd(model, x, labels, l2_per_channel, {}, {}, gen); }),
             Contains("L2") && Contains("pixel space"));
  const attacks::ThreatModel two_channels{.eps = 0.1f, .space = attacks::EpsSpace::normalized,
                                          .normalization_std = {0.2f, 0.3f}};
  CHECK_THAT(error_message([&] { attacks::pgd(model, x, labels, two_channels, {}, {}, gen); }),
             Contains("2 epsilons") && Contains("3 channels"));
  CHECK_THAT(error_message([&] { attacks::EpsBall(x.flatten(1), linf); }), Contains("[N, C, H, W]"));
  CHECK(attacks::parse_norm("linf") == attacks::Norm::linf);
  CHECK(attacks::parse_norm("l2") == attacks::Norm::l2);
  CHECK_THAT(error_message([] { attacks::parse_norm("Linf"); }), Contains("'Linf'") && Contains("linf or l2"));
}

}  // namespace flexnn
