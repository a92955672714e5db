// Restarts keep the per-example worst case: an example counts as broken if any restart broke it,
// and its adversarial example is that restart's; among restarts that did not break it, the one
// with the highest attack score (a loss, or the negative margin) is kept.
#pragma once

#include "engine/tensor.hpp"

#include <cstdint>
#include <vector>

namespace flexnn::attacks {

class WorstOfRestarts {
 public:
  // Offers one restart's examples x [N, ...] with their verdicts and scores (higher: worse for the model).
  void add(const Tensor& x, const std::vector<uint8_t>& broken, const std::vector<float>& score);
  const Tensor& adversarial() const { return x_; }
  const std::vector<uint8_t>& broken() const { return broken_; }

 private:
  Tensor x_;
  std::vector<uint8_t> broken_;
  std::vector<float> score_;
};

}  // namespace flexnn::attacks
