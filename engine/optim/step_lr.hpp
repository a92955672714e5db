// optim::StepLR, as torch.optim.lr_scheduler.StepLR: every `step_size` epochs the learning rate
// of every group is multiplied by gamma (lr = base_lr * gamma^(epoch / step_size)).
#pragma once

#include "engine/optim/sgd.hpp"

#include <cmath>

namespace flexnn::optim {

class StepLR {
 public:
  StepLR(SGD& optimizer, int64_t step_size, float gamma) : optimizer_(optimizer), step_size_(step_size), gamma_(gamma) {
    FLEXNN_CHECK(step_size > 0, "StepLR: step_size must be positive, found {}", step_size);
    for (const ParamGroup& g : optimizer.param_groups()) base_lrs_.push_back(g.options.lr);
  }
  // Call once per epoch, after the epoch's optimiser steps.
  void step() { set_epoch(epoch_ + 1); }
  // Jumps to an epoch (used when resuming a run).
  void set_epoch(int64_t epoch) {
    epoch_ = epoch;
    const double factor = std::pow(static_cast<double>(gamma_), static_cast<double>(epoch_ / step_size_));
    auto& groups = optimizer_.param_groups();
    for (size_t i = 0; i < groups.size(); ++i) groups[i].options.lr = static_cast<float>(base_lrs_[i] * factor);
  }
  int64_t epoch() const { return epoch_; }

 private:
  SGD& optimizer_;
  int64_t step_size_;
  float gamma_;
  int64_t epoch_ = 0;
  std::vector<float> base_lrs_;
};

}  // namespace flexnn::optim
