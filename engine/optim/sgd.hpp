// optim::SGD, torch.optim.SGD's algorithm: per parameter, d = grad + weight_decay * p; with
// momentum, buf = momentum * buf + (1 - dampening) * d (buf = d on the first step) and d = buf
// (or d + momentum * buf with nesterov); then p -= lr * d. Parameters are organised in groups,
// each with its own settings (the paper trains thresholds without weight decay).
#pragma once

#include "engine/tensor.hpp"

#include <vector>

namespace flexnn::optim {

struct SGDOptions {
  float lr = 0.01f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  float dampening = 0.0f;
  bool nesterov = false;
};

struct ParamGroup {
  std::vector<Tensor> params;
  SGDOptions options;
};

class SGD {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  explicit SGD(std::vector<ParamGroup> groups);

  // Updates every parameter that has a gradient; parameters without one are skipped. The
  // parameters may live on any devices (a gradient and a momentum buffer on their parameter's);
  // all CUDA parameters are updated together by one multi-tensor kernel.
  void step();
  void zero_grad();
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Momentum buffers, one per parameter in group order (undefined until the first step); they
  // are part of a resumable training state.
  std::vector<Tensor>& momentum_buffers() { return momentum_buffers_; }

 private:
  std::vector<ParamGroup> groups_;
  std::vector<Tensor> momentum_buffers_;
};

}  // namespace flexnn::optim
