// log_softmax and the fused softmax cross-entropy, forward and backward. Inputs are viewed as
// [outer, dim, inner] with the softmax taken along `dim`; every reduction runs over one lane in a
// fixed order and subtracts the lane's max first, so results are stable for huge logits and
// bit-identical for any thread count.
#pragma once

#include "kernels/softmax_shape.hpp"

namespace flexnn::cpu {

// y = x - max - log(sum(exp(x - max))) along dim.
void log_softmax_forward(const float* x, SoftmaxShape s, float* y);
// dx = dy - exp(y) * sum(dy) along dim, y being the forward's output.
void log_softmax_backward(const float* dy, const float* y, SoftmaxShape s, float* dx);

// Mean over the n rows of logits [n, c] of -log_softmax(row)[target]; targets must lie in [0, c).
// Saves each row's max and log(sum(exp(x - max))) for the backward.
double cross_entropy_forward(const float* logits, const int64_t* targets, int64_t n, int64_t c, float* row_max,
                             float* row_logsum);
// dlogits = scale * (softmax(logits) - onehot(target)), scale being the incoming gradient / n.
void cross_entropy_backward(const float* logits, const int64_t* targets, const float* row_max,
                            const float* row_logsum, int64_t n, int64_t c, float scale, float* dlogits);

}  // namespace flexnn::cpu
