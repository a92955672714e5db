// Tests of FGSM and the evaluation loop: the attack against an analytic input gradient, ε per
// channel and per space, frozen parameters during the input-gradient pass, and evaluate()'s
// accuracies and pool fraction against the same quantities computed here batch by batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include "attacks/evaluation.hpp"
#include "attacks/fgsm.hpp"
#include "datasets/image_dataset.hpp"
#include "engine/flexnn.hpp"
#include "models/registry.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using testing::error_message;
using Catch::Matchers::Contains;

constexpr int64_t kExamples = 37, kBatch = 10;  // the last batch holds 7

// logits = x.flatten(1) · Wᵀ, whose cross-entropy input gradient is known in closed form.
class LinearLogits : public nn::Module {
 public:
  explicit LinearLogits(const Tensor& w) : weight(register_parameter("weight", w)) {}
  Tensor forward(const Tensor& x) override { return ops::linear(x.flatten(1), weight); }
  Tensor weight;
};

// ∂ mean CE / ∂x for LinearLogits, in double: (softmax(x Wᵀ) − onehot(y)) · W / N.
std::vector<double> analytic_input_gradient(const std::vector<float>& x, const std::vector<float>& w,
                                            const std::vector<int64_t>& y, int64_t features, int64_t classes) {
  const auto n = static_cast<int64_t>(y.size());
  std::vector<double> grad(n * features, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> logits(classes, 0.0);
    for (int64_t k = 0; k < classes; ++k)
      for (int64_t j = 0; j < features; ++j) logits[k] += double(x[i * features + j]) * w[k * features + j];
    const double top = *std::max_element(logits.begin(), logits.end());
    double total = 0;
    for (double& l : logits) total += (l = std::exp(l - top));
    for (int64_t k = 0; k < classes; ++k) {
      const double d = (logits[k] / total - (k == y[i] ? 1.0 : 0.0)) / double(n);
      for (int64_t j = 0; j < features; ++j) grad[i * features + j] += d * w[k * features + j];
    }
  }
  return grad;
}

float sign_of(double v) { return v > 0 ? 1.0f : (v < 0 ? -1.0f : 0.0f); }

// Random bytes in [0, 128): after fmnist-small's normalisation the 5×5 maxima lie around the
// thresholds' mean, so its flexible layer takes both branches.
datasets::ImageDataset random_images(int64_t count, uint64_t seed) {
  datasets::ImageDataset data;
  data.channels = 1, data.height = 28, data.width = 28;
  for (int c = 0; c < 10; ++c) data.class_names.push_back("class" + std::to_string(c));
  Generator gen(seed);
  for (float u : gen.uniform(count * data.image_bytes())) data.pixels.push_back(static_cast<uint8_t>(u * 128.0f));
  for (int64_t i = 0; i < count; ++i) data.labels.push_back(i % 10);
  return data;
}

// The dataset's examples in evaluate()'s order and batch size.
std::vector<datasets::LabelledImages> batches(const datasets::ImageDataset& data, int64_t batch_size) {
  std::vector<datasets::LabelledImages> out;
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(start + batch_size, data.size()); ++i) indices.push_back(i);
    out.push_back(datasets::take(data, indices));
  }
  return out;
}

std::vector<int64_t> predictions(nn::Module& model, const Tensor& images) {
  NoGradGuard no_grad;
  const Tensor p = ops::argmax(model(images), 1);
  return {p.data<int64_t>(), p.data<int64_t>() + p.numel()};
}

int64_t count_correct(nn::Module& model, const Tensor& images, const Tensor& labels) {
  const std::vector<int64_t> p = predictions(model, images);
  int64_t n = 0;
  for (size_t i = 0; i < p.size(); ++i) n += p[i] == labels.data<int64_t>()[i];
  return n;
}

double percent(int64_t correct, int64_t total) { return 100.0 * double(correct) / double(total); }

bool valid_percent_of(double accuracy, int64_t total) {
  const double count = accuracy * double(total) / 100.0;
  return accuracy >= 0 && accuracy <= 100 && std::abs(count - std::round(count)) < 1e-9;
}

// Labels each example with the model's own prediction (two in three) or another class (the rest),
// so its clean accuracy is neither 0 nor 100 nor a constant predictor's 10%, and FGSM has
// correct predictions to flip.
void label_by_predictions(nn::Module& model, datasets::ImageDataset& data) {
  int64_t i = 0;
  for (const datasets::LabelledImages& b : batches(data, kBatch))
    for (const int64_t p : predictions(model, b.images)) {
      data.labels[i] = i % 3 ? p : (p + 1 + i % 9) % 10;
      ++i;
    }
}

}  // namespace

TEST_CASE("fgsm equals clamp(x + eps * sign(dCE/dx), 0, 1) with the analytic gradient", "[attacks]") {
  constexpr int64_t N = 4, C = 2, H = 3, W = 3, F = C * H * W, K = 5;
  Generator gen(11);
  const Tensor x = Tensor::rand({N, C, H, W}, gen);
  LinearLogits model(Tensor::randn({K, F}, gen));
  model.eval();
  const std::vector<int64_t> y{0, 3, 1, 4};
  const Tensor labels = Tensor::from_indices(y, {N});
  const std::vector<float> xv = x.to_vector();
  const std::vector<double> g = analytic_input_gradient(xv, model.weight.to_vector(), y, F, K);

  // Signs are only a fair test where the gradient is clearly away from zero.
  double largest = 0, smallest = std::numeric_limits<double>::infinity();
  for (double v : g) largest = std::max(largest, std::abs(v)), smallest = std::min(smallest, std::abs(v));
  REQUIRE(smallest > 1e-3 * largest);

  const attacks::InputGradient ig = attacks::loss_input_gradient(model, x, labels);
  const std::vector<float> engine_grad = ig.grad.to_vector();
  REQUIRE(engine_grad.size() == g.size());
  for (size_t i = 0; i < g.size(); ++i) CHECK(engine_grad[i] == Approx(g[i]).epsilon(1e-4).margin(1e-7));

  for (const std::vector<float>& eps : {std::vector<float>{0.1f}, std::vector<float>{0.05f, 0.3f}}) {
    CAPTURE(eps);
    const std::vector<float> adv = attacks::fgsm(model, x, labels, eps).to_vector();
    REQUIRE(adv.size() == xv.size());
    int clamped = 0;
    for (size_t i = 0; i < adv.size(); ++i) {
      const float e = eps.size() == 1 ? eps[0] : eps[(i / (H * W)) % C];
      const float moved = xv[i] + sign_of(g[i]) * e;
      clamped += moved < 0.0f || moved > 1.0f;
      CAPTURE(i, xv[i], g[i]);
      CHECK(adv[i] == std::clamp(moved, 0.0f, 1.0f));
      CHECK(adv[i] >= 0.0f);
      CHECK(adv[i] <= 1.0f);
      CHECK(std::abs(adv[i] - xv[i]) <= e + 2e-7f);  // e, up to the rounding of x + e
    }
    CHECK(clamped > 0);  // the clamp was exercised
  }
  CHECK_FALSE(x.requires_grad());
}

TEST_CASE("pixel_eps converts an attack strength to per-channel pixel units", "[attacks]") {
  const std::vector<float> std3{0.25f, 0.5f, 0.2f};
  CHECK(attacks::pixel_eps(0.1f, attacks::EpsSpace::pixel, std3) == std::vector<float>{0.1f});
  CHECK(attacks::pixel_eps(0.0f, attacks::EpsSpace::pixel, {1.0f}) == std::vector<float>{0.0f});
  const std::vector<float> normalized = attacks::pixel_eps(0.1f, attacks::EpsSpace::normalized, std3);
  REQUIRE(normalized.size() == 3);
  for (size_t c = 0; c < 3; ++c) CHECK(normalized[c] == 0.1f * std3[c]);

  for (float bad : {-0.01f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    CAPTURE(bad);
    for (attacks::EpsSpace space : {attacks::EpsSpace::pixel, attacks::EpsSpace::normalized}) {
      CHECK_THROWS_AS(attacks::pixel_eps(bad, space, {0.5f}), Error);
      CHECK_THAT(error_message([&] { attacks::pixel_eps(bad, space, {0.5f}); }), Contains("non-negative"));
    }
  }

  CHECK(attacks::parse_eps_space("pixel") == attacks::EpsSpace::pixel);
  CHECK(attacks::parse_eps_space("normalized") == attacks::EpsSpace::normalized);
  for (const char* bad : {"pixels", "normalised", "Pixel", ""}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(attacks::parse_eps_space(bad), Error);
    const std::string message = error_message([&] { attacks::parse_eps_space(bad); });
    CHECK_THAT(message, Contains(std::string("'") + bad + "'"));
    CHECK_THAT(message, Contains("pixel") && Contains("normalized"));
  }
}

// A normalisation std that is negative or NaN would turn a valid eps into a negative (an attack
// that lowers the loss) or NaN one (NaN images), silently: it must be refused like a bad eps.
TEST_CASE("pixel_eps rejects a normalisation std that would give a negative or NaN pixel eps", "[attacks]") {
  for (float bad : {-0.5f, std::numeric_limits<float>::quiet_NaN()}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(attacks::pixel_eps(0.1f, attacks::EpsSpace::normalized, {0.3f, bad}), Error);
  }
}

TEST_CASE("fgsm_step moves each channel by its own eps and leaves zero-gradient elements", "[attacks]") {
  constexpr int64_t N = 2, C = 3, H = 4, W = 5, plane = H * W;
  Generator gen(5);
  const Tensor x = Tensor::rand({N, C, H, W}, gen, 0.3f, 0.7f);  // no clamping at these eps
  std::vector<float> gv = Tensor::randn({N, C, H, W}, gen).to_vector();
  for (size_t i = 0; i < gv.size(); i += 7) gv[i] = (i % 2 == 0) ? 0.0f : -0.0f;
  const Tensor grad = Tensor::from_vector(gv, {N, C, H, W});
  const std::vector<float> eps{0.01f, 0.1f, 0.25f};
  const std::vector<float> xv = x.to_vector();
  const std::vector<float> adv = attacks::fgsm_step(x, grad, eps).to_vector();
  REQUIRE(adv.size() == xv.size());
  for (size_t i = 0; i < adv.size(); ++i) {
    const int64_t c = (int64_t(i) / plane) % C;
    CAPTURE(i, c, gv[i]);
    if (gv[i] == 0.0f)
      CHECK(adv[i] == xv[i]);
    else
      CHECK(adv[i] == xv[i] + (gv[i] > 0 ? eps[c] : -eps[c]));
  }

  // One eps for every channel.
  const std::vector<float> one = attacks::fgsm_step(x, grad, std::vector<float>{0.2f}).to_vector();
  for (size_t i = 0; i < one.size(); ++i)
    CHECK(one[i] == (gv[i] == 0.0f ? xv[i] : xv[i] + (gv[i] > 0 ? 0.2f : -0.2f)));

  const Tensor other = Tensor::zeros({N, C, H, W + 1});
  CHECK_THAT(error_message([&] { attacks::fgsm_step(x, other, eps); }),
             Contains("[2, 3, 4, 5]") && Contains("[2, 3, 4, 6]"));
  CHECK_THROWS_AS(attacks::fgsm_step(x, other, eps), Error);
  const std::vector<float> two{0.1f, 0.2f};
  CHECK_THROWS_AS(attacks::fgsm_step(x, grad, two), Error);
  CHECK_THAT(error_message([&] { attacks::fgsm_step(x, grad, two); }), Contains("2 epsilons"));
  CHECK_THROWS_AS(attacks::fgsm_step(x, grad, std::vector<float>{}), Error);
  const Tensor flat = Tensor::rand({N, C * H * W}, gen);
  CHECK_THROWS_AS(attacks::fgsm_step(flat, flat, std::vector<float>{0.1f}), Error);
}

TEST_CASE("loss_input_gradient freezes the parameters and returns detached logits", "[attacks]") {
  Generator gen(21);
  const auto model = models::build_model({{"model", "fmnist-small"}, {"flex", "standard"}}, gen);
  model->eval();
  const Tensor x = Tensor::rand({3, 1, 28, 28}, gen);
  const Tensor labels = Tensor::from_indices({2, 7, 0}, {3});
  std::vector<Tensor> params = model->parameters();
  REQUIRE(params.size() == 9);
  params[1].requires_grad_(false);  // a parameter frozen beforehand stays frozen

  SECTION("no gradient is created on parameters that had none") {
    const attacks::InputGradient g = attacks::loss_input_gradient(*model, x, labels);
    for (size_t i = 0; i < params.size(); ++i) {
      CAPTURE(i);
      CHECK(params[i].requires_grad() == (i != 1));
      CHECK_FALSE(params[i].grad().defined());
    }
    CHECK_FALSE(g.logits.requires_grad());
    CHECK(g.logits.is_leaf());
    CHECK(g.grad.shape() == x.shape());
    CHECK_FALSE(x.requires_grad());
    CHECK_FALSE(x.grad().defined());
    std::vector<float> expected;
    {
      NoGradGuard no_grad;
      expected = (*model)(x).to_vector();
    }
    CHECK(testing::bit_identical(g.logits.to_vector(), expected));
    double norm = 0;
    for (float v : g.grad.to_vector()) norm += std::abs(v);
    CHECK(norm > 0);
  }
  SECTION("accumulated parameter gradients are left unchanged") {
    ops::cross_entropy((*model)(x), labels).backward();
    std::vector<std::vector<float>> before;
    for (size_t i = 0; i < params.size(); ++i) {
      REQUIRE(params[i].grad().defined() == (i != 1));
      before.push_back(i != 1 ? params[i].grad().to_vector() : std::vector<float>{});
    }
    (void)attacks::loss_input_gradient(*model, x, labels);
    for (size_t i = 0; i < params.size(); ++i) {
      CAPTURE(i);
      CHECK(params[i].requires_grad() == (i != 1));
      if (i == 1)
        CHECK_FALSE(params[i].grad().defined());
      else
        CHECK(testing::bit_identical(params[i].grad().to_vector(), before[i]));
    }
  }
  SECTION("requires_grad is restored when the forward throws") {
    const Tensor wrong = Tensor::rand({3, 1, 27, 27}, gen);
    CHECK_THROWS_AS(attacks::loss_input_gradient(*model, wrong, labels), Error);
    for (size_t i = 0; i < params.size(); ++i) CHECK(params[i].requires_grad() == (i != 1));
  }
}

TEST_CASE("evaluate's accuracies and pool fraction match a batch-by-batch computation", "[attacks]") {
  Generator gen(7);
  const auto model = models::build_model({{"model", "fmnist-small"}, {"flex", "standard"}}, gen);
  model->eval();
  auto* flex = models::flexible_layers(*model).at(0);
  datasets::ImageDataset data = random_images(kExamples, 1);

  label_by_predictions(*model, data);
  const std::vector<datasets::LabelledImages> reference = batches(data, kBatch);
  REQUIRE(reference.size() == 4);
  REQUIRE(reference.back().labels.numel() == 7);

  const std::vector<float> eps{0.0f, 0.002f, 0.005f};  // an untrained network is fragile
  int64_t clean = 0;
  std::vector<int64_t> adversarial(eps.size(), 0);
  flex->reset_pool_fraction();
  flex->count_pool_units(true);
  for (const datasets::LabelledImages& b : reference) clean += count_correct(*model, b.images, b.labels);
  flex->count_pool_units(false);
  const double expected_pool = flex->pool_fraction();
  for (const datasets::LabelledImages& b : reference)
    for (size_t k = 0; k < eps.size(); ++k) {
      const Tensor adv = attacks::fgsm(*model, b.images, b.labels, std::vector<float>{eps[k]});
      adversarial[k] += count_correct(*model, adv, b.labels);
    }
  REQUIRE(clean == 24);  // the 24 examples labelled with the model's prediction
  // The attack does something at these strengths, without flipping every prediction.
  REQUIRE(adversarial[0] == clean);
  REQUIRE(adversarial[1] < clean);
  REQUIRE(adversarial[2] < adversarial[1]);
  REQUIRE(adversarial[2] > 0);

  // Stale counts that evaluate() must discard: black images take the pool branch everywhere.
  flex->count_pool_units(true);
  (void)predictions(*model, Tensor::zeros({kBatch, 1, 28, 28}));
  flex->count_pool_units(false);
  REQUIRE(flex->pool_fraction() != expected_pool);

  model->train();
  const attacks::EvaluationResult r = attacks::evaluate(*model, data, {.batch_size = kBatch, .fgsm_eps = eps});
  CHECK_FALSE(model->is_training());
  CHECK(r.n == kExamples);
  CHECK(r.clean_accuracy == Approx(percent(clean, kExamples)).epsilon(1e-12));
  REQUIRE(r.attacks.size() == eps.size());
  for (size_t k = 0; k < eps.size(); ++k) {
    CAPTURE(eps[k]);
    CHECK(r.attacks[k].name == "fgsm");
    CHECK(r.attacks[k].eps == eps[k]);
    CHECK(r.attacks[k].accuracy == Approx(percent(adversarial[k], kExamples)).epsilon(1e-12));
  }
  CHECK(r.attacks[0].accuracy == r.clean_accuracy);  // eps = 0 changes nothing
  CHECK(r.pool_fraction > 0.0);
  CHECK(r.pool_fraction < 1.0);
  CHECK(r.pool_fraction == Approx(expected_pool).epsilon(1e-12));
  CHECK(r.seconds >= 0.0);

  // Counting is off again: another evaluation-mode forward leaves the fraction unchanged.
  const double after = flex->pool_fraction();
  (void)predictions(*model, reference[0].images);
  CHECK(flex->pool_fraction() == after);

  // Clean accuracy alone (no eps) is the same number, and takes the no-gradient path.
  const attacks::EvaluationResult clean_only = attacks::evaluate(*model, data, {.batch_size = kBatch, .fgsm_eps = {}});
  CHECK(clean_only.attacks.empty());
  CHECK(clean_only.clean_accuracy == r.clean_accuracy);
  CHECK(clean_only.pool_fraction == Approx(expected_pool).epsilon(1e-12));
}

TEST_CASE("evaluate without flexible units reports a NaN pool fraction; random masks pool half", "[attacks]") {
  const datasets::ImageDataset data = random_images(kExamples, 2);
  const attacks::EvaluationOptions options{.batch_size = kBatch, .fgsm_eps = {0.05f}};

  Generator none_gen(8);
  const auto baseline = models::build_model({{"model", "fmnist-small"}, {"flex", "none"}}, none_gen);
  const attacks::EvaluationResult none = attacks::evaluate(*baseline, data, options);
  CHECK(std::isnan(none.pool_fraction));
  CHECK(none.n == kExamples);
  CHECK(valid_percent_of(none.clean_accuracy, kExamples));
  CHECK(valid_percent_of(none.attacks.at(0).accuracy, kExamples));
  CHECK_FALSE(baseline->is_training());

  Generator random_gen(9);
  const auto random = models::build_model({{"model", "fmnist-small"}, {"flex", "random"}}, random_gen);
  const attacks::EvaluationResult r = attacks::evaluate(*random, data, options);
  CHECK(r.n == kExamples);
  CHECK(valid_percent_of(r.clean_accuracy, kExamples));
  REQUIRE(r.attacks.size() == 1);
  CHECK(valid_percent_of(r.attacks[0].accuracy, kExamples));
  CHECK(r.pool_fraction == Approx(0.5).margin(0.05));
  CHECK_FALSE(random->is_training());

  datasets::ImageDataset empty = data;
  empty.pixels.clear();
  empty.labels.clear();
  CHECK_THROWS_AS(attacks::evaluate(*random, empty, options), Error);
  CHECK_THAT(error_message([&] { attacks::evaluate(*random, empty, options); }), Contains("empty"));
  attacks::EvaluationOptions negative = options;
  negative.fgsm_eps = {0.1f, -0.1f};
  CHECK_THAT(error_message([&] { attacks::evaluate(*random, data, negative); }), Contains("-0.1"));
}

TEST_CASE("normalized eps 0.1 with std 0.353 is pixel eps 0.0353", "[attacks]") {
  Generator gen(13);
  const auto model = models::build_model({{"model", "fmnist-small"}, {"flex", "standard"}}, gen);
  model->eval();
  datasets::ImageDataset data = random_images(kExamples, 3);
  label_by_predictions(*model, data);
  // An untrained network is fragile: 0.0353 already flips every prediction, 0.00353 only some.
  const attacks::EvaluationResult normalized =
      attacks::evaluate(*model, data,
                        {.batch_size = kBatch,
                         .fgsm_eps = {0.1f, 0.01f},
                         .eps_space = attacks::EpsSpace::normalized,
                         .normalization_std = {0.353f}});
  const attacks::EvaluationResult pixel =
      attacks::evaluate(*model, data, {.batch_size = kBatch, .fgsm_eps = {0.0353f, 0.00353f, 0.01f}});
  CHECK(attacks::pixel_eps(0.1f, attacks::EpsSpace::normalized, {0.353f})[0] == Approx(0.0353f).epsilon(1e-6));
  REQUIRE(normalized.attacks.size() == 2);
  REQUIRE(pixel.attacks.size() == 3);
  CHECK(normalized.attacks[0].eps == 0.1f);  // reported in the space it was asked in
  CHECK(normalized.attacks[1].eps == 0.01f);
  CHECK(normalized.clean_accuracy == pixel.clean_accuracy);
  CHECK(normalized.attacks[0].accuracy == pixel.attacks[0].accuracy);
  CHECK(normalized.attacks[1].accuracy == pixel.attacks[1].accuracy);
  // The weaker pair is not a saturated attack, and 0.01 in pixel units is a different, stronger one.
  CHECK(pixel.attacks[1].accuracy < pixel.clean_accuracy);
  CHECK(pixel.attacks[2].accuracy < pixel.attacks[1].accuracy);
}

}  // namespace flexnn
