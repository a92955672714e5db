// check_gradients: compares autograd's gradients with central finite differences.
// The scalar differentiated is L = sum(f(inputs) * R) for fixed random weights R, accumulated in
// double; every element of every input that requires grad is perturbed by ±eps. A gradient is
// accepted when |analytic - numeric| <= atol + rtol * |numeric|.
#pragma once

#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace flexnn::testing {

struct GradcheckOptions {
  double eps = 1e-3;
  double atol = 1e-3;
  double rtol = 1e-2;
};

inline double weighted_sum(const Tensor& out, const std::vector<float>& weights) {
  const std::vector<float> v = out.to_vector();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * weights[i];
  return s;
}

// Returns the number of mismatching gradient elements (0 when all agree) and reports each with
// Catch's INFO/CHECK machinery.
inline void check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                            GradcheckOptions options = {}) {
  Generator gen(1234);
  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = f(inputs);
  }
  const std::vector<float> weights = Tensor::randn(probe.shape(), gen).to_vector();

  for (Tensor& t : inputs)
    if (t.requires_grad()) t.set_grad(Tensor());
  Tensor out = f(inputs);
  REQUIRE(out.requires_grad());
  Tensor r = Tensor::from_vector(weights, out.shape());
  ops::sum(ops::mul(out, r)).backward();

  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    if (!t.requires_grad()) continue;
    REQUIRE(t.grad().defined());
    const std::vector<float> analytic = t.grad().to_vector();
    float* x = t.data<float>();
    int mismatches = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float original = x[i];
      x[i] = original + static_cast<float>(options.eps);
      const double plus = weighted_sum(f(inputs), weights);
      x[i] = original - static_cast<float>(options.eps);
      const double minus = weighted_sum(f(inputs), weights);
      x[i] = original;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double diff = std::abs(analytic[i] - numeric);
      if (diff > options.atol + options.rtol * std::abs(numeric)) {
        if (++mismatches <= 5)
          FAIL_CHECK("input " << k << " element " << i << ": analytic " << analytic[i] << " numeric " << numeric);
      }
    }
    CHECK(mismatches == 0);
  }
}

}  // namespace flexnn::testing
