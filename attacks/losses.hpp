// The per-example losses attacks maximise, computed on the host from a batch's logits [N, K]
// (small: K classes per example) in double precision, with their gradients with respect to the
// logits, so an attack back-propagates them through the model on any device in one call:
//   cross_entropy  log Σ_k exp(z_k) − z_y
//   dlr            −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)   (Croce & Hein 2020; K ≥ 3;
//                  π sorts the logits in decreasing order)
//   margin         max_{i≠y} z_i − z_y                               (Carlini & Wagner's, untargeted)
// Beside the loss: each example's margin z_y − max_{i≠y} z_i (negative: misclassified) and whether
// the first maximum of its logits is its label (the evaluation's verdict).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace flexnn::attacks {

enum class AttackLoss { cross_entropy, dlr, margin };
AttackLoss parse_attack_loss(std::string_view name);  // "ce", "dlr" or "margin"
std::string_view attack_loss_name(AttackLoss loss);

struct LossValues {
  std::vector<float> loss;         // [N]
  std::vector<float> grad;         // [N, K]: ∂ loss_i / ∂ z_i (empty unless asked for)
  std::vector<float> margin;       // [N]
  std::vector<uint8_t> correct;    // [N]
};

// logits: [N, K] row-major, labels: [N], each in [0, K).
LossValues attack_loss(std::span<const float> logits, std::span<const int64_t> labels, AttackLoss loss,
                       bool with_grad);

// Margins and verdicts alone (no loss).
LossValues verdicts(std::span<const float> logits, std::span<const int64_t> labels);

}  // namespace flexnn::attacks
