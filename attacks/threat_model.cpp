// The L∞ / L2 ε-ball: projection, steepest-ascent steps and random starts, composed from ops so
// they run on the inputs' device.
#include "attacks/threat_model.hpp"

#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace flexnn::attacks {
namespace {

// [N, 1, ..., 1] of x's rank, for per-example factors.
Shape example_shape(const Tensor& x) {
  Shape shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return shape;
}

bool all_equal(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [&](float e) { return e == v.front(); });
}

}  // namespace

Norm parse_norm(std::string_view name) {
  if (name == "linf") return Norm::linf;
  if (name == "l2") return Norm::l2;
  fail("unknown norm '{}': expected linf or l2", name);
}

std::string_view norm_name(Norm norm) { return norm == Norm::linf ? "linf" : "l2"; }

std::vector<float> ThreatModel::pixel(float value) const { return pixel_eps(value, space, normalization_std); }

EpsBall::EpsBall(const Tensor& x, const ThreatModel& threat) : x_(x.detach()), norm_(threat.norm) {
  FLEXNN_CHECK(x.dim() == 4, "attack: expected inputs [N, C, H, W], found {}", shape_str(x.shape()));
  eps_values_ = threat.pixel(threat.eps);
  FLEXNN_CHECK(eps_values_.size() == 1 || static_cast<int64_t>(eps_values_.size()) == x.size(1),
               "attack: {} epsilons (one per channel of the normalisation) for inputs with {} channels, {}",
               eps_values_.size(), x.size(1), shape_str(x.shape()));
  if (norm_ == Norm::l2) {
    FLEXNN_CHECK(all_equal(eps_values_),
                 "attack: an L2 ball has one radius, but epsilon in normalized space gives one per channel ({}); "
                 "use pixel space for L2",
                 fmt::join(eps_values_, ", "));
    eps_values_.resize(1);
  }
  if (all_equal(eps_values_)) eps_values_.resize(1);
  eps_ = Tensor::from_vector(eps_values_, {static_cast<int64_t>(eps_values_.size()), 1, 1}, x.device());
}

Tensor EpsBall::project(const Tensor& x_adv) const {
  FLEXNN_CHECK(x_adv.shape() == x_.shape(), "attack: projecting {} onto the ball around inputs {}",
               shape_str(x_adv.shape()), shape_str(x_.shape()));
  NoGradGuard no_grad;
  Tensor delta = x_adv - x_;
  if (norm_ == Norm::l2) {
    // δ·min(1, ε/‖δ‖): ε/(‖δ‖ + tiny) is huge for δ = 0, so the clamp leaves it alone.
    const Tensor factor = ops::clamp(ops::pow(example_norms(delta) + 1e-12f, -1.0f) * eps_values_[0], 0.0f, 1.0f);
    delta = delta * factor;
  } else if (eps_values_.size() == 1) {
    delta = ops::clamp(delta, -eps_values_[0], eps_values_[0]);
  } else {
    // Per channel: clamp(δ/ε, −1, 1)·ε, which stays within ±ε since rounding is monotone.
    delta = ops::clamp(delta / eps_, -1.0f, 1.0f) * eps_;
  }
  return ops::clamp(x_ + delta, 0.0f, 1.0f);
}

Tensor EpsBall::ascent_step(const Tensor& x_adv, const Tensor& grad, const Tensor& step) const {
  NoGradGuard no_grad;
  if (norm_ == Norm::linf) return x_adv + ops::sign(grad) * step;
  return x_adv + grad * (step / (example_norms(grad) + 1e-12f));
}

Tensor EpsBall::uniform_start(Generator& gen) const {
  NoGradGuard no_grad;
  const Device device = x_.device();
  if (norm_ == Norm::linf) return x_ + Tensor::rand(x_.shape(), gen, -1.0f, 1.0f, device) * eps_;
  // A uniform direction (a normalised Gaussian) times a radius ε·u^(1/d), u ~ U(0, 1).
  const Tensor direction = Tensor::randn(x_.shape(), gen, 0.0f, 1.0f, device);
  const double d = static_cast<double>(x_.numel() / x_.size(0));
  std::vector<float> radius = gen.uniform(x_.size(0));
  for (float& r : radius) r = eps_values_[0] * static_cast<float>(std::pow(static_cast<double>(r), 1.0 / d));
  const Tensor r = Tensor::from_vector(radius, example_shape(x_), device);
  return project(x_ + direction * (r / (example_norms(direction) + 1e-12f)));
}

Tensor example_norms(const Tensor& v) {
  NoGradGuard no_grad;
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < v.dim(); ++d) dims.push_back(d);
  return ops::sqrt(ops::sum(v * v, dims, true));
}

Tensor select_examples(const std::vector<uint8_t>& take_a, const Tensor& a, const Tensor& b) {
  FLEXNN_CHECK(a.shape() == b.shape() && static_cast<int64_t>(take_a.size()) == a.size(0),
               "select_examples: {} choices between batches {} and {}", take_a.size(), shape_str(a.shape()),
               shape_str(b.shape()));
  const auto count = std::count_if(take_a.begin(), take_a.end(), [](uint8_t t) { return t != 0; });
  if (count == static_cast<int64_t>(take_a.size())) return a;
  if (count == 0) return b;
  NoGradGuard no_grad;
  std::vector<float> mask(take_a.size()), rest(take_a.size());
  for (size_t i = 0; i < take_a.size(); ++i) mask[i] = take_a[i] ? 1.0f : 0.0f, rest[i] = 1.0f - mask[i];
  // a·1 + b·0 is a exactly (and b·1 + a·0 is b) for finite values.
  return a * Tensor::from_vector(mask, example_shape(a), a.device()) +
         b * Tensor::from_vector(rest, example_shape(a), a.device());
}

}  // namespace flexnn::attacks
