// The SGD update of one parameter tensor, fused into one pass over its elements.
#pragma once

#include <cstdint>

namespace flexnn::cpu {

struct SgdStep {
  float lr, momentum, weight_decay, dampening;
  bool nesterov;
  bool first_step;  // the momentum buffer is initialised to the first update direction
};

// param -= lr * direction, where direction follows torch.optim.SGD; momentum_buffer may be null
// when momentum is 0.
void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n, SgdStep s);

}  // namespace flexnn::cpu
