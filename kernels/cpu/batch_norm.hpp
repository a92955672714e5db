// Batch normalisation kernels on an input viewed as [n, c, hw] (hw = 1 for [N,C], H*W for NCHW):
// per-channel statistics, the normalising forward and the backward. Channel statistics are summed
// in double, per channel in a fixed order (n-major, then hw), and the work is split over channels,
// so every result is bit-identical for any thread count.
#pragma once

#include "kernels/batch_norm_shape.hpp"

#include <cstdint>

namespace flexnn::cpu {

// Batch statistics of each channel: mean and invstd = 1 / sqrt(biased variance + eps), by two
// passes (mean, then squared deviations). When running_mean / running_var are non-null they move
// in place: running = (1 - momentum) * running + momentum * stat, with the unbiased variance
// (var * m / (m - 1), m = n * hw values per channel; requires m > 1).
void batch_norm_stats(const float* x, BatchNormShape s, float eps, float momentum, float* mean, float* invstd,
                      float* running_mean, float* running_var);

// invstd[c] = 1 / sqrt(var[c] + eps): the evaluation-mode statistics from the running variance.
void batch_norm_invstd(const float* var, int64_t c, float eps, float* invstd);

// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; weight / bias may be null (1 and 0).
void batch_norm_forward(const float* x, const float* mean, const float* invstd, const float* weight,
                        const float* bias, BatchNormShape s, float* y);

// Gradients from dy. With batch statistics (training) dx carries the statistics' terms:
//   dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  xhat = (x - mean) * invstd;
// with fixed statistics (evaluation) dx = weight * invstd * dy. dweight = sum(dy * xhat),
// dbias = sum(dy) per channel. weight may be null (1); any of dx, dweight, dbias may be null (skipped).
void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* weight, BatchNormShape s, bool batch_stats, float* dx, float* dweight,
                         float* dbias);

}  // namespace flexnn::cpu
