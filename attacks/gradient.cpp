// The input-gradient oracle: forward with the graph, per-example loss and logit gradient on the
// host, backward from the logits; EOT repeats it and averages; BPDA sets the gate's backward
// sharpness for the forward that records the graph.
#include "attacks/gradient.hpp"

#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/gate_backward.hpp"

#include <cmath>

namespace flexnn::attacks {

FrozenParameters::FrozenParameters(const nn::Module& model) : params_(model.parameters()) {
  for (Tensor& p : params_) {
    was_.push_back(p.requires_grad());
    p.requires_grad_(false);
  }
}

FrozenParameters::~FrozenParameters() {
  for (size_t i = 0; i < params_.size(); ++i) params_[i].requires_grad_(was_[i]);
}

LossGradient input_gradient(nn::Module& model, const Tensor& x, std::span<const int64_t> labels,
                            const GradientOptions& options) {
  FLEXNN_CHECK(options.eot_samples >= 1, "input gradient: EOT needs at least 1 sample, found {}",
               options.eot_samples);
  FLEXNN_CHECK(x.dim() >= 1 && x.size(0) == static_cast<int64_t>(labels.size()),
               "input gradient: {} labels for inputs {}", labels.size(), shape_str(x.shape()));
  FrozenParameters frozen(model);
  GradModeGuard recording(true);
  std::optional<ops::GateBackwardSharpness> bpda;
  if (options.bpda_sharpness) bpda.emplace(*options.bpda_sharpness);
  LossGradient out;
  std::vector<double> loss_sum(labels.size(), 0.0);
  for (int pass = 0; pass < options.eot_samples; ++pass) {
    Tensor input = x.detach().requires_grad_();
    const Tensor logits = model(input);
    FLEXNN_CHECK(logits.dim() == 2 && logits.size(0) == x.size(0),
                 "input gradient: expected logits [{}, K] from the model, found {}", x.size(0),
                 shape_str(logits.shape()));
    out.values = attack_loss(logits.detach().to(kCPU).to_vector(), labels, options.loss, true);
    // A model whose output does not depend on its input records no graph: its gradient is 0.
    if (logits.requires_grad()) logits.backward(Tensor::from_vector(out.values.grad, logits.shape(), logits.device()));
    Tensor grad = input.grad();
    if (!grad.defined()) grad = Tensor::zeros(x.shape(), DType::Float32, x.device());
    out.grad = pass == 0 ? grad : out.grad + grad;
    for (size_t i = 0; i < labels.size(); ++i) loss_sum[i] += out.values.loss[i];
  }
  out.values.grad.clear();
  if (options.eot_samples > 1) {
    NoGradGuard no_grad;
    out.grad = out.grad * (1.0f / static_cast<float>(options.eot_samples));
    for (size_t i = 0; i < labels.size(); ++i)
      out.values.loss[i] = static_cast<float>(loss_sum[i] / options.eot_samples);
  }
  return out;
}

int64_t zero_gradient_examples(const LossGradient& gradient) {
  NoGradGuard no_grad;
  // Σ|g| over an example is 0 exactly when every element is: a sum of non-negative floats never
  // rounds to 0 unless all its terms are 0.
  const std::vector<float> total = ops::sum(ops::abs(gradient.grad.flatten(1)), {1}).to(kCPU).to_vector();
  const std::vector<uint8_t>& correct = gradient.values.correct;
  FLEXNN_CHECK(correct.size() == total.size(), "zero_gradient_examples: {} verdicts for {} gradients",
               correct.size(), total.size());
  int64_t zero = 0;
  for (size_t i = 0; i < total.size(); ++i) zero += correct[i] && total[i] == 0.0f;
  return zero;
}

std::vector<float> host_logits(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  return model(x).to(kCPU).to_vector();
}

std::vector<int64_t> host_labels(const Tensor& labels) {
  FLEXNN_CHECK(labels.dtype() == DType::Int64 && labels.dim() == 1, "attack: expected int64 labels [N], found {} {}",
               dtype_name(labels.dtype()), shape_str(labels.shape()));
  const Tensor host = labels.to(kCPU);
  return {host.data<int64_t>(), host.data<int64_t>() + host.numel()};
}

}  // namespace flexnn::attacks
