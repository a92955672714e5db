// SGD update, element-wise and parallel in fixed chunks.
#include "kernels/cpu/sgd.hpp"

#include "kernels/cpu/parallel.hpp"

namespace flexnn::cpu {

void sgd_update(float* param, const float* grad, float* momentum_buffer, int64_t n, SgdStep s) {
  parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float d = grad[i] + s.weight_decay * param[i];
      if (momentum_buffer != nullptr) {
        float& buf = momentum_buffer[i];
        buf = s.first_step ? d : s.momentum * buf + (1.0f - s.dampening) * d;
        d = s.nesterov ? d + s.momentum * buf : buf;
      }
      param[i] -= s.lr * d;
    }
  });
}

}  // namespace flexnn::cpu
