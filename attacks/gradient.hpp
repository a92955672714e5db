// The input-gradient oracle every gradient attack calls: the summed per-example loss
// (attacks/losses.hpp) differentiated with respect to the input alone, the model's parameters
// frozen for the pass. Two adaptive estimators (Athalye, Carlini & Wagner 2018) are options:
// - EOT: the gradient and the loss averaged over K forward passes, for models whose forward is
//   random (a flexible layer in random mode draws a new mask at every pass);
// - BPDA: the flexible layers' threshold gates differentiated with a softer sharpness while their
//   forward stays the model's own (ops::GateBackwardSharpness), for a steep gate that saturates
//   and passes almost no gradient through its decision.
#pragma once

#include "attacks/losses.hpp"
#include "engine/nn/module.hpp"

#include <optional>
#include <vector>

namespace flexnn::attacks {

// Turns off requires_grad on every parameter of a model for its lifetime, then restores it.
class FrozenParameters {
 public:
  explicit FrozenParameters(const nn::Module& model);
  ~FrozenParameters();
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<Tensor> params_;
  std::vector<bool> was_;
};

struct GradientOptions {
  AttackLoss loss = AttackLoss::cross_entropy;
  int eot_samples = 1;                  // EOT: passes averaged (1: the plain gradient)
  std::optional<float> bpda_sharpness = std::nullopt;  // BPDA: the flexible gates' backward sharpness
};

struct LossGradient {
  Tensor grad{};        // ∂ Σ_i loss_i / ∂x: x's shape and device; the mean over the EOT passes
  LossValues values{};  // loss: the mean over the passes; margin and correct: the last pass's
};

// The model should be in evaluation mode. Records the graph even under a NoGradGuard.
LossGradient input_gradient(nn::Module& model, const Tensor& x, std::span<const int64_t> labels,
                            const GradientOptions& options);

// The examples of a batch of gradients [N, ...] whose every element is exactly 0, among those the
// pass classified correctly (a misclassified example needs no gradient: for the DLR loss, one
// whose label is third is at a constant loss).
int64_t zero_gradient_examples(const LossGradient& gradient);

// The model's logits for x [N, K] on the host, without recording a graph.
std::vector<float> host_logits(nn::Module& model, const Tensor& x);

// A tensor's int64 values on the host (labels).
std::vector<int64_t> host_labels(const Tensor& labels);

}  // namespace flexnn::attacks
