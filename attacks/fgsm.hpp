// FGSM (Goodfellow et al. 2015), as the paper and PyTorch's tutorial use it: inputs x in [0, 1]
// pixel space (normalisation is inside the model), the model in evaluation mode,
//   x_adv = clamp(x + ε·sign(∇ₓ CE(f(x), y)), 0, 1).
// ε may differ per channel: the authors' convention (ε in normalised units, --eps-space
// normalized) is ε·std[c] in pixel units, because the normalisation is a per-channel affine map.
#pragma once

#include "engine/nn/module.hpp"

#include <span>
#include <string_view>
#include <vector>

namespace flexnn::attacks {

enum class EpsSpace { pixel, normalized };
EpsSpace parse_eps_space(std::string_view name);  // "pixel" or "normalized"

// The per-channel pixel-space ε of an attack strength given in `space` (std: the model's
// normalisation, one per channel).
std::vector<float> pixel_eps(float eps, EpsSpace space, const std::vector<float>& std);

// The mean cross-entropy's logits and its gradient with respect to the input alone: the model's
// parameters are frozen for the pass, so no weight gradient is computed. Records the graph even
// when called under a NoGradGuard.
struct InputGradient {
  Tensor logits;  // detached
  Tensor grad;    // same shape as x
};
InputGradient loss_input_gradient(nn::Module& model, const Tensor& x, const Tensor& labels);

// clamp(x + eps[c]·sign(grad), 0, 1); eps has one value, or one per channel of x [N, C, H, W].
Tensor fgsm_step(const Tensor& x, const Tensor& grad, std::span<const float> eps);

// The FGSM example of x for the model (which should be in evaluation mode).
Tensor fgsm(nn::Module& model, const Tensor& x, const Tensor& labels, std::span<const float> eps);

}  // namespace flexnn::attacks
