// Batch normalisation kernels on a CUDA device, with the CPU kernels' signatures and numerics
// (kernels/cpu/batch_norm.hpp): per-channel statistics summed in double by one block per channel
// in a fixed order (deterministic, independent of scheduling), the normalising forward and the
// backward. Pointers are device pointers; the work is queued on the backend's stream.
#pragma once

#include "kernels/batch_norm_shape.hpp"

#include <cstdint>

namespace flexnn::cuda {

void batch_norm_stats(const float* x, BatchNormShape s, float eps, float momentum, float* mean, float* invstd,
                      float* running_mean, float* running_var);
void batch_norm_invstd(const float* var, int64_t c, float eps, float* invstd);
void batch_norm_forward(const float* x, const float* mean, const float* invstd, const float* weight,
                        const float* bias, BatchNormShape s, float* y);
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* weight, BatchNormShape s, bool batch_stats, float* dx, float* dweight,
                         float* dbias);

// ++*num_batches_tracked on the device (BatchNorm's int64 counter), without a host round trip.
void batch_norm_count_batch(int64_t* num_batches_tracked);

}  // namespace flexnn::cuda
