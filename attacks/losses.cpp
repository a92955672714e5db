// Cross-entropy, DLR and margin losses per example, their logit gradients, margins and verdicts.
#include "attacks/losses.hpp"

#include "engine/error.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace flexnn::attacks {
namespace {

constexpr std::array<std::pair<AttackLoss, std::string_view>, 3> kLosses{
    {{AttackLoss::cross_entropy, "ce"}, {AttackLoss::dlr, "dlr"}, {AttackLoss::margin, "margin"}}};

// The largest logit other than the label's (the first such maximum).
int64_t best_other(const float* z, int64_t classes, int64_t label) {
  int64_t best = -1;
  for (int64_t k = 0; k < classes; ++k)
    if (k != label && (best < 0 || z[k] > z[best])) best = k;
  return best;
}

// Indices of the three largest logits, in decreasing order (ties: the lower index first).
std::array<int64_t, 3> top3(const float* z, int64_t classes) {
  std::array<int64_t, 3> top{-1, -1, -1};
  for (int64_t k = 0; k < classes; ++k)
    for (int j = 0; j < 3; ++j)
      if (top[j] < 0 || z[k] > z[top[j]]) {
        for (int m = 2; m > j; --m) top[m] = top[m - 1];
        top[j] = k;
        break;
      }
  return top;
}

}  // namespace

AttackLoss parse_attack_loss(std::string_view name) {
  for (const auto& [loss, loss_name] : kLosses)
    if (loss_name == name) return loss;
  fail("unknown attack loss '{}': expected ce, dlr or margin", name);
}

std::string_view attack_loss_name(AttackLoss loss) { return kLosses[static_cast<size_t>(loss)].second; }

LossValues attack_loss(std::span<const float> logits, std::span<const int64_t> labels, AttackLoss loss,
                       bool with_grad) {
  const auto n = static_cast<int64_t>(labels.size());
  FLEXNN_CHECK(n > 0 && logits.size() % labels.size() == 0,
               "attack loss: {} logits for {} labels: expected [N, K] logits for N labels", logits.size(), n);
  const int64_t classes = static_cast<int64_t>(logits.size()) / n;
  FLEXNN_CHECK(classes >= 2, "attack loss: the model has {} output, an attack needs at least 2 classes", classes);
  FLEXNN_CHECK(loss != AttackLoss::dlr || classes >= 3,
               "attack loss: the DLR loss needs at least 3 classes (it divides by z_π1 − z_π3), the model has {}",
               classes);
  LossValues out;
  out.loss.resize(n);
  out.margin.resize(n);
  out.correct.resize(n);
  if (with_grad) out.grad.assign(logits.size(), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * classes;
    const int64_t y = labels[i];
    FLEXNN_CHECK(y >= 0 && y < classes, "attack loss: label {} of example {} is outside [0, {})", y, i, classes);
    const int64_t other = best_other(z, classes, y);
    const double margin = double(z[y]) - double(z[other]);
    out.margin[i] = static_cast<float>(margin);
    out.correct[i] = std::max_element(z, z + classes) - z == y;
    float* g = with_grad ? out.grad.data() + i * classes : nullptr;
    switch (loss) {
      case AttackLoss::cross_entropy: {
        const double top = *std::max_element(z, z + classes);
        double total = 0;
        for (int64_t k = 0; k < classes; ++k) total += std::exp(double(z[k]) - top);
        out.loss[i] = static_cast<float>(top + std::log(total) - double(z[y]));
        if (g != nullptr)
          for (int64_t k = 0; k < classes; ++k)
            g[k] = static_cast<float>(std::exp(double(z[k]) - top) / total - (k == y ? 1.0 : 0.0));
        break;
      }
      case AttackLoss::dlr: {
        const std::array<int64_t, 3> top = top3(z, classes);
        const double d = double(z[top[0]]) - double(z[top[2]]) + 1e-12;
        out.loss[i] = static_cast<float>(-margin / d);
        if (g != nullptr) {
          g[y] -= static_cast<float>(1.0 / d);
          g[other] += static_cast<float>(1.0 / d);
          g[top[0]] += static_cast<float>(margin / (d * d));
          g[top[2]] -= static_cast<float>(margin / (d * d));
        }
        break;
      }
      case AttackLoss::margin:
        out.loss[i] = static_cast<float>(-margin);
        if (g != nullptr) g[y] -= 1.0f, g[other] += 1.0f;
        break;
    }
  }
  return out;
}

LossValues verdicts(std::span<const float> logits, std::span<const int64_t> labels) {
  LossValues v = attack_loss(logits, labels, AttackLoss::margin, false);
  v.loss.clear();
  return v;
}

}  // namespace flexnn::attacks
