// Tiny models with known answers for the attack tests: a linear classifier, its analytic L∞ worst
// case, a random problem built on them and the check that an attack reaches that worst case, a
// small nonlinear net, a model with a random-mask flexible layer, data sets built from tensors, and
// margins computed directly from a model's logits.
#pragma once

#include "datasets/image_dataset.hpp"
#include "engine/flexnn.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace flexnn::testing {

// logits = x.flatten(1)·Wᵀ + b.
class LinearClassifier : public nn::Module {
 public:
  LinearClassifier(const Tensor& w, const Tensor& b)
      : weight(register_parameter("weight", w)), bias(register_parameter("bias", b)) {}
  Tensor forward(const Tensor& x) override { return ops::linear(x.flatten(1), weight, bias); }
  Tensor weight, bias;
};

// The smallest margin z_y − max_{j≠y} z_j a linear classifier can reach over the L∞ ball of
// radius eps around x intersected with [0, 1]^d: for each rival j, (w_y − w_j)·x' + b_y − b_j is
// smallest at the vertex x'_i = max(x_i − ε, 0) where w_y − w_j > 0, min(x_i + ε, 1) where < 0.
inline double linf_worst_margin(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                                int64_t label, float eps) {
  const auto classes = static_cast<int64_t>(b.size());
  const auto d = static_cast<int64_t>(x.size());
  double worst = std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < classes; ++j) {
    if (j == label) continue;
    double m = double(b[label]) - double(b[j]);
    for (int64_t i = 0; i < d; ++i) {
      const double a = double(w[label * d + i]) - double(w[j * d + i]);
      const double vertex = a > 0 ? std::max(double(x[i]) - eps, 0.0) : std::min(double(x[i]) + eps, 1.0);
      m += a * vertex;
    }
    worst = std::min(worst, m);
  }
  return worst;
}

// A random linear classifier (weights N(0, 0.5), biases N(0, 0.2), drawn from gen) of `classes`
// classes on n images of side × side pixels made by make_inputs(shape, gen), each labelled with its
// clean prediction (so every clean margin is positive), with each example's analytic worst margin
// over the L∞ ball of radius eps.
struct LinearProblem {
  std::vector<float> w, b;
  std::shared_ptr<LinearClassifier> model;
  Tensor x;
  std::vector<float> xv;  // x's values
  std::vector<int64_t> y;
  std::vector<double> worst;
};

template <typename MakeInputs>
LinearProblem linear_problem(int64_t classes, int64_t n, int64_t side, float eps, Generator& gen,
                             MakeInputs make_inputs) {
  const int64_t d = side * side;
  LinearProblem p;
  p.w = Tensor::randn({classes, d}, gen, 0.0f, 0.5f).to_vector();
  p.b = Tensor::randn({classes}, gen, 0.0f, 0.2f).to_vector();
  p.model = std::make_shared<LinearClassifier>(Tensor::from_vector(p.w, {classes, d}),
                                               Tensor::from_vector(p.b, {classes}));
  p.model->eval();
  p.x = make_inputs(Shape{n, 1, side, side}, gen);
  p.xv = p.x.to_vector();
  {
    NoGradGuard no_grad;
    const Tensor predicted = ops::argmax((*p.model)(p.x), 1);
    p.y.assign(predicted.data<int64_t>(), predicted.data<int64_t>() + n);
  }
  for (int64_t i = 0; i < n; ++i)
    p.worst.push_back(linf_worst_margin({p.xv.begin() + i * d, p.xv.begin() + (i + 1) * d}, p.w, p.b, p.y[i], eps));
  return p;
}

// The same on images uniform in [0, 1).
inline LinearProblem linear_problem(int64_t classes, int64_t n, int64_t side, float eps, Generator& gen) {
  return linear_problem(classes, n, side, eps, gen, [](const Shape& shape, Generator& g) { return Tensor::rand(shape, g); });
}

// conv C→3 (3×3) → ReLU → linear to `classes`: nonlinear, with input gradients almost everywhere.
class SmallNet : public nn::Module {
 public:
  SmallNet(int64_t size, int64_t classes, Generator& gen, int64_t channels = 1)
      : conv(register_module("conv", std::make_shared<nn::Conv2d>(channels, 3, 3, 1, 0, true, gen))),
        fc(register_module("fc", std::make_shared<nn::Linear>(3 * (size - 2) * (size - 2), classes, true, gen))) {}
  Tensor forward(const Tensor& x) override { return fc->forward(ops::relu(conv->forward(x)).flatten(1)); }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::Linear> fc;
};

// A flexible layer (1→2 channels, conv 3×3, pool 3×3 stride 1) → flatten → linear, on size×size
// inputs; its mode and sharpness as given (random: a new mask at every forward).
class FlexibleNet : public nn::Module {
 public:
  FlexibleNet(int64_t size, int64_t classes, nn::FlexMode mode, float sharpness, Generator& gen) {
    nn::FlexibleConv2dOptions o;
    o.in_channels = 1, o.out_channels = 2, o.kernel = 3, o.pool = {3}, o.input_size = size, o.mode = mode;
    o.sharpness = sharpness;
    flex = register_module("flex", std::make_shared<nn::FlexibleConv2d>(o, gen));
    fc = register_module("fc", std::make_shared<nn::Linear>(2 * (size - 2) * (size - 2), classes, true, gen));
  }
  Tensor forward(const Tensor& x) override { return fc->forward(flex->forward(x).flatten(1)); }
  std::shared_ptr<nn::FlexibleConv2d> flex;
  std::shared_ptr<nn::Linear> fc;
};

// A data set holding x [N, C, H, W] (values in [0, 1], rounded to bytes) and labels.
inline datasets::ImageDataset dataset_of(const Tensor& x, const std::vector<int64_t>& labels, int64_t classes) {
  datasets::ImageDataset data;
  data.channels = x.size(1), data.height = x.size(2), data.width = x.size(3);
  for (int64_t c = 0; c < classes; ++c) data.class_names.push_back("class" + std::to_string(c));
  for (float v : x.to_vector()) data.pixels.push_back(static_cast<uint8_t>(std::lround(v * 255.0f)));
  data.labels = labels;
  return data;
}

// The data set's images as the float tensor a loader gives (byte / 255).
inline Tensor images_of(const datasets::ImageDataset& data) {
  std::vector<float> v;
  for (uint8_t b : data.pixels) v.push_back(static_cast<float>(b) / 255.0f);
  return Tensor::from_vector(v, {data.size(), data.channels, data.height, data.width});
}

// Per example: z_y − max_{j≠y} z_j of the model's logits for x.
inline std::vector<double> margins(nn::Module& model, const Tensor& x, const std::vector<int64_t>& labels) {
  NoGradGuard no_grad;
  const std::vector<float> z = model(x).to_vector();
  const auto n = static_cast<int64_t>(labels.size());
  const int64_t k = static_cast<int64_t>(z.size()) / n;
  std::vector<double> out;
  for (int64_t i = 0; i < n; ++i) {
    double rival = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < k; ++j)
      if (j != labels[i]) rival = std::max(rival, double(z[i * k + j]));
    out.push_back(double(z[i * k + labels[i]]) - rival);
  }
  return out;
}

// Checks an attack's examples `adv` of a linear problem: in the ε-ball and [0, 1]; no margin below
// the analytic worst (a check of the fixture); with two classes, the optimum reached on every example
// the attack cannot break; and most (two classes: all) of the clearly breakable examples (worst
// margin < −0.05) broken, that is with a margin below 0, or at most 0 when `zero_breaks`.
inline void check_linear_worst_case(const LinearProblem& p, const Tensor& adv, float eps, bool zero_breaks) {
  const std::vector<float> av = adv.to_vector();
  for (size_t k = 0; k < av.size(); ++k) {
    REQUIRE(av[k] >= 0.0f);
    REQUIRE(av[k] <= 1.0f);
    REQUIRE(std::abs(av[k] - p.xv[k]) <= eps + 1e-7f);
  }
  const std::vector<double> reached = margins(*p.model, adv, p.y);
  const bool two_classes = p.b.size() == 2;
  int breakable = 0, broken = 0, robust = 0;
  for (size_t i = 0; i < p.y.size(); ++i) {
    const double worst = p.worst[i];
    CAPTURE(i, worst, reached[i]);
    CHECK(reached[i] >= worst - 1e-5);
    if (worst < -0.05) ++breakable, broken += zero_breaks ? reached[i] <= 0 : reached[i] < 0;
    if (worst > 0) {
      ++robust;
      if (two_classes) CHECK(reached[i] == Approx(worst).margin(1e-5));
    }
  }
  REQUIRE(breakable > 5);
  REQUIRE(robust > 5);
  CHECK(broken >= (two_classes ? breakable : breakable * 9 / 10));
}

}  // namespace flexnn::testing
