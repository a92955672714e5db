// The threat model every attack shares: inputs in [0, 1] pixel space (normalisation is inside the
// model), a perturbation bounded in L∞ or L2 norm by ε, and the operations on that set an attack
// needs, on any device: the projection, the steepest-ascent step of the norm, random starts.
// ε is given in the units of an EpsSpace (attacks/fgsm.hpp): pixel units, or the authors'
// normalised units, which are ε·std[c] pixel units per channel (L∞ only).
#pragma once

#include "attacks/fgsm.hpp"
#include "engine/generator.hpp"
#include "engine/tensor.hpp"

#include <string_view>
#include <vector>

namespace flexnn::attacks {

enum class Norm { linf, l2 };
Norm parse_norm(std::string_view name);  // "linf" or "l2"
std::string_view norm_name(Norm norm);

struct ThreatModel {
  Norm norm = Norm::linf;
  float eps = 0.031f;  // in the units of `space`
  EpsSpace space = EpsSpace::pixel;
  std::vector<float> normalization_std{1.0f};  // the model's, per channel, for EpsSpace::normalized

  // A length in the units of `space` (ε, a step size) in pixel units: one value, or one per channel.
  std::vector<float> pixel(float value) const;
};

// The allowed set around a batch of clean inputs x [N, C, H, W]:
// {x' : ‖x' − x‖ ≤ ε (per channel ε[c] for L∞), 0 ≤ x' ≤ 1}.
class EpsBall {
 public:
  EpsBall(const Tensor& x, const ThreatModel& threat);
  const Tensor& center() const { return x_; }
  Norm norm() const { return norm_; }
  // ε in pixel units, as a tensor broadcasting against x: [1 or C, 1, 1].
  const Tensor& radius() const { return eps_; }

  // Projects onto the ε-ball around x, then clamps to [0, 1] (TRADES' order; the result is in the
  // set, because clamping to [0, 1] never moves a point of the ball away from x in any coordinate).
  Tensor project(const Tensor& x_adv) const;
  // The norm's steepest-ascent step of length `step` (broadcasting against x: a scalar [1], per
  // channel [C, 1, 1], or per example [N, 1, 1, 1] / [N, C, 1, 1]) along grad: L∞ step·sign(grad),
  // L2 step·grad/‖grad‖₂ per example. Not projected.
  Tensor ascent_step(const Tensor& x_adv, const Tensor& grad, const Tensor& step) const;
  // TRADES' random start: L∞ x + U(−ε, ε) per element, not clamped (TRADES clamps only after its
  // first step); L2 a uniform point of the ε-ball, projected. Draws from gen's Philox stream.
  Tensor uniform_start(Generator& gen) const;

 private:
  Tensor x_;
  Norm norm_;
  std::vector<float> eps_values_;
  Tensor eps_;
};

// What an attack returns for a batch: its adversarial examples (in the set), and how many
// examples' first input gradient was exactly 0 (AutoAttack's zero-gradient check; 0 for
// gradient-free attacks).
struct AttackBatch {
  Tensor adversarial;
  int64_t zero_gradient_examples = 0;
};

// ‖v‖₂ of each example of v [N, ...], as [N, 1, 1, 1] (the rank of v) for broadcasting.
Tensor example_norms(const Tensor& v);

// Per-example choice between two batches of the same shape: row i of `a` where take_a[i], else
// row i of `b`. Exact (the rows are copied, not interpolated).
Tensor select_examples(const std::vector<uint8_t>& take_a, const Tensor& a, const Tensor& b);

}  // namespace flexnn::attacks
