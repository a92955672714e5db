// The SGD step on a CUDA device for many parameter tensors at once: one launch updates every
// tensor of a list (each with its own group's settings) with torch.optim.SGD's update, element
// for element the CPU kernel's (kernels/cpu/sgd.hpp). Pointers are device pointers.
#pragma once

#include <cstdint>

namespace flexnn::cuda {

// One parameter tensor of the step and its group's settings. momentum_buffer may be null when
// momentum is 0; first_step initialises the buffer to the first update direction.
struct SgdTensor {
  float* param;
  const float* grad;
  float* momentum_buffer;
  int64_t n;
  float lr, momentum, weight_decay, dampening;
  bool nesterov, first_step;
};

// param -= lr * direction for every tensor of tensors[0, count); the tensors must not overlap.
// The descriptors travel in the kernel's parameters (no device buffer, no host synchronisation),
// kMaxSgdTensorsPerLaunch per launch.
inline constexpr int kMaxSgdTensorsPerLaunch = 48;
void sgd_update(const SgdTensor* tensors, int64_t count);

}  // namespace flexnn::cuda
