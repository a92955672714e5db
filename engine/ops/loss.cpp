// ops::log_softmax (any dim) and ops::cross_entropy (logits [N, C], int64 targets [N], mean over
// the batch): validation, the stable kernels on the inputs' device, and their backward. On CUDA the
// loss stays on the device: targets are range-checked by the kernel, and the record of a bad one is
// read back without waiting for the device (see take_target_error).
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/softmax.hpp"
#include "kernels/cuda/softmax.hpp"

#include <algorithm>

namespace flexnn::ops {
namespace {

// Throws for an out-of-range target that a CUDA cross_entropy kernel has recorded by now.
void check_cuda_targets(Device device) {
  cuda::TargetError bad{};
  FLEXNN_CHECK(!cuda::take_target_error(bad),
               "cross_entropy: target {} at index {} is out of range for the logits' classes (found by the kernel on "
               "{}, in the targets of this call or of an earlier one)",
               bad.value, bad.row, device.str());
}

Tensor cross_entropy_cpu(const Tensor& logits, const Tensor& targets) {
  const int64_t n = logits.size(0), c = logits.size(1);
  const int64_t* t = targets.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    FLEXNN_CHECK(t[i] >= 0 && t[i] < c, "cross_entropy: target {} at index {} is out of range for {} classes", t[i], i,
                 c);
  Tensor row_max = Tensor::empty({n}, DType::Float32);
  Tensor row_logsum = Tensor::empty({n}, DType::Float32);
  const double loss =
      cpu::cross_entropy_forward(logits.data<float>(), t, n, c, row_max.data<float>(), row_logsum.data<float>());
  return record(Tensor::scalar(static_cast<float>(loss)), "cross_entropy", {logits, targets},
                [logits = logits.detach(), targets, row_max, row_logsum](const Tensor& g) -> std::vector<Tensor> {
                  const int64_t n = logits.size(0), c = logits.size(1);
                  Tensor dlogits = Tensor::empty(logits.shape(), DType::Float32);
                  cpu::cross_entropy_backward(logits.data<float>(), targets.data<int64_t>(), row_max.data<float>(),
                                              row_logsum.data<float>(), n, c, g.item() / static_cast<float>(n),
                                              dlogits.data<float>());
                  return {dlogits, Tensor()};
                });
}

Tensor cross_entropy_cuda(const Tensor& logits, const Tensor& targets) {
  const Device device = logits.device();
  const int64_t n = logits.size(0), c = logits.size(1);
  Tensor row_max = Tensor::empty({n}, DType::Float32, device);
  Tensor row_logsum = Tensor::empty({n}, DType::Float32, device);
  Tensor loss = Tensor::empty({}, DType::Float32, device);
  cuda::cross_entropy_forward(logits.data<float>(), targets.data<int64_t>(), n, c, row_max.data<float>(),
                              row_logsum.data<float>(), loss.data<float>());
  check_cuda_targets(device);
  return record(loss, "cross_entropy", {logits, targets},
                [logits = logits.detach(), targets, row_max, row_logsum](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dlogits = Tensor::empty(logits.shape(), DType::Float32, logits.device());
                  cuda::cross_entropy_backward(logits.data<float>(), targets.data<int64_t>(), row_max.data<float>(),
                                               row_logsum.data<float>(), logits.size(0), logits.size(1),
                                               g.data<float>(), dlogits.data<float>());
                  check_cuda_targets(logits.device());
                  return {dlogits, Tensor()};
                });
}

}  // namespace

Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_float(x, "log_softmax", "input");
  const Shape& shape = x.shape();
  const int64_t rank = x.dim();
  const int64_t d = normalize_dim(dim, std::max<int64_t>(1, rank), "log_softmax");  // a scalar acts as [1]
  SoftmaxShape s{1, rank == 0 ? 1 : shape[d], 1};
  for (int64_t i = 0; i < d; ++i) s.outer *= shape[i];
  for (int64_t i = d + 1; i < rank; ++i) s.inner *= shape[i];

  Tensor y = Tensor::empty(shape, DType::Float32, x.device());
  const auto forward = x.device().is_cuda() ? cuda::log_softmax_forward : cpu::log_softmax_forward;
  forward(x.data<float>(), s, y.data<float>());
  return record(y, "log_softmax", {x}, [y = y.detach(), s](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(g.shape(), DType::Float32, g.device());
    const auto backward = g.device().is_cuda() ? cuda::log_softmax_backward : cpu::log_softmax_backward;
    backward(g.data<float>(), y.data<float>(), s, dx.data<float>());
    return {dx};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets) {
  check_float(logits, "cross_entropy", "logits");
  check_rank(logits, 2, "cross_entropy", "logits [N, C]");
  FLEXNN_CHECK(targets.defined(), "cross_entropy: targets are undefined");
  FLEXNN_CHECK(targets.dtype() == DType::Int64, "cross_entropy: expected int64 targets, found {}",
               dtype_name(targets.dtype()));
  const int64_t n = logits.size(0);
  FLEXNN_CHECK(targets.shape() == Shape{n}, "cross_entropy: targets of shape {} for logits of shape {} (expected [{}])",
               shape_str(targets.shape()), shape_str(logits.shape()), n);
  const Device device = common_device("cross_entropy", {&logits, &targets});
  return device.is_cuda() ? cross_entropy_cuda(logits, targets) : cross_entropy_cpu(logits, targets);
}

}  // namespace flexnn::ops
