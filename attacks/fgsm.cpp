// FGSM: the input gradient with frozen parameters, and the signed step.
#include "attacks/fgsm.hpp"

#include "attacks/gradient.hpp"
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"

#include <algorithm>
#include <cmath>

namespace flexnn::attacks {

EpsSpace parse_eps_space(std::string_view name) {
  if (name == "pixel") return EpsSpace::pixel;
  if (name == "normalized") return EpsSpace::normalized;
  fail("unknown epsilon space '{}': expected pixel or normalized", name);
}

std::vector<float> pixel_eps(float eps, EpsSpace space, const std::vector<float>& std) {
  FLEXNN_CHECK(eps >= 0 && std::isfinite(eps), "epsilon must be a non-negative number, found {}", eps);
  if (space == EpsSpace::pixel) return {eps};
  std::vector<float> out;
  for (float s : std) {
    FLEXNN_CHECK(s > 0 && std::isfinite(s), "epsilon in normalized space needs positive normalisation stds, found {}",
                 s);
    out.push_back(eps * s);
  }
  return out;
}

InputGradient loss_input_gradient(nn::Module& model, const Tensor& x, const Tensor& labels) {
  FrozenParameters frozen(model);
  GradModeGuard recording(true);  // the attack needs the graph, even inside a NoGradGuard
  Tensor input = x.detach().requires_grad_();
  Tensor logits = model(input);
  ops::cross_entropy(logits, labels).backward();
  return {logits.detach(), input.grad()};
}

Tensor fgsm_step(const Tensor& x, const Tensor& grad, std::span<const float> eps) {
  FLEXNN_CHECK(x.shape() == grad.shape(), "fgsm: input {} and gradient {} differ in shape", shape_str(x.shape()),
               shape_str(grad.shape()));
  FLEXNN_CHECK(x.dim() == 4 && (eps.size() == 1 || static_cast<int64_t>(eps.size()) == x.size(1)),
               "fgsm: expected an input [N, C, H, W] and 1 or C epsilons, found {} and {} epsilons",
               shape_str(x.shape()), eps.size());
  NoGradGuard no_grad;
  const Tensor step = Tensor::from_vector(std::vector<float>(eps.begin(), eps.end()),
                                          {static_cast<int64_t>(eps.size()), 1, 1}, x.device());
  return ops::clamp(x + ops::sign(grad) * step, 0.0f, 1.0f);
}

Tensor fgsm(nn::Module& model, const Tensor& x, const Tensor& labels, std::span<const float> eps) {
  return fgsm_step(x, loss_input_gradient(model, x, labels).grad, eps);
}

}  // namespace flexnn::attacks
