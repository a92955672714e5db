// log_softmax and the fused softmax cross-entropy on a CUDA device, with the CPU kernels'
// signatures (kernels/cpu/softmax.hpp) except where a value would have to cross to the host: the
// loss is written to a device scalar, and the backward reads the incoming gradient from the device.
// Pointers are device pointers; the work is queued on the backend's stream.
#pragma once

#include "kernels/softmax_shape.hpp"

namespace flexnn::cuda {

// y = x - max - log(sum(exp(x - max))) along dim.
void log_softmax_forward(const float* x, SoftmaxShape s, float* y);
// dx = dy - exp(y) * sum(dy) along dim, y being the forward's output.
void log_softmax_backward(const float* dy, const float* y, SoftmaxShape s, float* dx);

// loss[0] = mean over the n rows of logits [n, c] of -log_softmax(row)[target]; saves each row's
// max and log(sum(exp(x - max))) for the backward. A target outside [0, c) makes the loss NaN and
// is recorded on the device for take_target_error (the host does not wait for it here).
void cross_entropy_forward(const float* logits, const int64_t* targets, int64_t n, int64_t c, float* row_max,
                           float* row_logsum, float* loss);
// dlogits = (grad[0] / n) * (softmax(logits) - onehot(target)); grad is the device scalar gradient
// of the loss.
void cross_entropy_backward(const float* logits, const int64_t* targets, const float* row_max, const float* row_logsum,
                            int64_t n, int64_t c, const float* grad, float* dlogits);

// An out-of-range target found by cross_entropy_forward: its row and value (the value clamped to
// the int32 range).
struct TargetError {
  int64_t row, value;
};
// Takes (returns and clears) the out-of-range target of the lowest row that a finished
// cross_entropy_forward launch recorded; false when there is none. Never waits for the device: an
// error recorded by work still running on a GPU is found by a later call (on the emulator, work is
// done when issued, so the launch just made is always seen).
bool take_target_error(TargetError& error);

}  // namespace flexnn::cuda
