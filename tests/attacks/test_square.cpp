// Tests of the Square attack: its p schedule and window sizes against hand-computed values; the
// analytic L∞ worst case of linear classifiers reached (two classes: exactly, for every example
// it cannot break); the ε-ball and [0, 1] respected; examples leave the search once
// misclassified (queries counted); errors.
#include <catch2/catch.hpp>

#include "attack_fixtures.hpp"
#include "attacks/square.hpp"
#include "test_helpers.hpp"

#include <cmath>

namespace flexnn {
namespace {

using Catch::Matchers::Contains;
using testing::error_message;

// Wraps a model and counts the examples it is asked to classify.
class CountingModel : public nn::Module {
 public:
  explicit CountingModel(nn::Module& inner) : inner_(inner) {}
  Tensor forward(const Tensor& x) override {
    examples += x.size(0);
    ++calls;
    return inner_(x);
  }
  int64_t examples = 0, calls = 0;

 private:
  nn::Module& inner_;
};

}  // namespace

TEST_CASE("square's p schedule and window side follow the reference code", "[attacks][square]") {
  // Query i of Q is rescaled to i·10000/Q; p halves after 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000.
  const std::vector<std::pair<int, float>> at_10000{{0, 0.8f},      {10, 0.8f},      {11, 0.4f},      {50, 0.4f},
                                                    {51, 0.2f},     {200, 0.2f},     {201, 0.1f},     {500, 0.1f},
                                                    {501, 0.05f},   {1001, 0.025f},  {2001, 0.0125f}, {4001, 0.00625f},
                                                    {6001, 0.003125f}, {8000, 0.003125f}, {8001, 0.0015625f}};
  for (const auto& [iteration, p] : at_10000) {
    CAPTURE(iteration);
    CHECK(attacks::square_fraction(iteration, 10000, 0.8f) == p);
  }
  CHECK(attacks::square_fraction(5, 5000, 0.8f) == 0.8f);  // 5·10000/5000 = 10
  CHECK(attacks::square_fraction(6, 5000, 0.8f) == 0.4f);  // 12
  CHECK(attacks::square_fraction(4999, 5000, 0.05f) == 0.05f / 512);
  // s = round(√(p·H·W)), within [1, min(H, W) − 1].
  CHECK(attacks::square_side(0.8f, 28, 28) == 25);  // √627.2 = 25.04
  CHECK(attacks::square_side(0.05f, 28, 28) == 6);  // √39.2 = 6.26
  CHECK(attacks::square_side(0.001f, 28, 28) == 1);
  CHECK(attacks::square_side(1.0f, 4, 4) == 3);
  CHECK(attacks::square_side(0.5f, 32, 32) == 23);  // √512 = 22.6
}

TEST_CASE("square reaches the analytic L-inf worst case of linear classifiers", "[attacks][square]") {
  constexpr int64_t N = 40, S = 4;
  for (const int64_t classes : {2, 4}) {
    CAPTURE(classes);
    Generator gen(60 + classes);
    const float eps = 0.1f;
    const testing::LinearProblem p = testing::linear_problem(classes, N, S, eps, gen);
    testing::LinearClassifier& model = *p.model;
    const Tensor& x = p.x;
    const std::vector<int64_t>& y = p.y;
    const Tensor adv =
        attacks::square(model, x, Tensor::from_indices(y, {N}), {.eps = eps}, {.queries = 2000}, gen).adversarial;
    // Two classes: the margin is a sum over pixels, so single-pixel moves reach the optimal vertex.
    testing::check_linear_worst_case(p, adv, eps, true);
  }
}

TEST_CASE("square stops querying an example once it is misclassified", "[attacks][square]") {
  constexpr int64_t N = 6, S = 5, Q = 50;
  Generator gen(70);
  testing::SmallNet net(S, 3, gen);
  net.eval();
  CountingModel model(net);
  const Tensor x = Tensor::rand({N, 1, S, S}, gen);
  std::vector<int64_t> predicted;
  {
    NoGradGuard no_grad;
    const Tensor p = ops::argmax(net(x), 1);
    predicted.assign(p.data<int64_t>(), p.data<int64_t>() + N);
  }
  // Labels no perturbation of this size can make right: the model's margins stay negative.
  std::vector<int64_t> wrong;
  for (int64_t p : predicted) wrong.push_back((p + 1) % 3);
  const attacks::ThreatModel tiny{.eps = 1e-4f};
  const std::vector<double> clean_margins = testing::margins(net, x, wrong);
  for (double m : clean_margins) REQUIRE(m < -1e-2);
  attacks::square(model, x, Tensor::from_indices(wrong, {N}), tiny, {.queries = Q}, gen);
  CHECK(model.calls == 1);  // the initial stripes only
  CHECK(model.examples == N);

  // With the right labels and a budget too small to break them, every example uses every query.
  model.calls = model.examples = 0;
  attacks::square(model, x, Tensor::from_indices(predicted, {N}), tiny, {.queries = Q}, gen);
  CHECK(model.calls == Q);
  CHECK(model.examples == N * Q);
}

TEST_CASE("square rejects bad settings with clear errors", "[attacks][square]") {
  Generator gen(3);
  testing::SmallNet model(5, 3, gen);
  const Tensor x = Tensor::rand({2, 1, 5, 5}, gen);
  const Tensor labels = Tensor::from_indices({0, 1}, {2});
  CHECK_THAT(error_message([&] {
               attacks::square(model, x, labels, {.norm = attacks::Norm::l2, .eps = 0.5f}, {}, gen);
             }),
             Contains("L∞") && Contains("l2"));
  CHECK_THAT(error_message([&] { attacks::square(model, x, labels, {}, {.queries = 0}, gen); }),
             Contains("at least 1 query"));
  CHECK_THAT(error_message([&] { attacks::square(model, x, labels, {}, {.p_init = 1.5f}, gen); }),
             Contains("p_init"));
  CHECK_THAT(error_message([&] { attacks::square(model, x, Tensor::from_indices({0}, {1}), {}, {}, gen); }),
             Contains("1 labels"));
}

}  // namespace flexnn
