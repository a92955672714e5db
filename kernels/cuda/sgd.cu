// The multi-tensor SGD step: the descriptors of up to kMaxSgdTensorsPerLaunch tensors are passed
// by value in the kernel's parameters (as PyTorch's multi_tensor_apply does), so the host neither
// allocates nor copies nor waits; each tensor is cut into chunks of kChunk elements, and the
// launch's blocks walk the (tensor, chunk) pairs, finding a chunk's tensor by binary search over
// the chunk offsets. Element for element the update is the CPU kernel's.
#include "kernels/cuda/sgd.hpp"

#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;
constexpr long long kChunk = 1 << 14;
constexpr long long kMaxBlocks = 65535LL * 16;

// One launch's tensors; chunk_begin[t] is the first chunk of tensor t, chunk_begin[count] the total.
struct SgdLaunch {
  int count;
  long long chunk_begin[kMaxSgdTensorsPerLaunch + 1];
  SgdTensor tensors[kMaxSgdTensorsPerLaunch];
};
static_assert(sizeof(SgdLaunch) <= 4000, "kernel parameters are limited to 4 KiB");

__global__ void sgd_kernel(const SgdLaunch launch) {
  for (long long chunk = blockIdx.x; chunk < launch.chunk_begin[launch.count]; chunk += gridDim.x) {
    int lo = 0, hi = launch.count - 1;  // the last tensor whose chunks begin at or before `chunk`
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (launch.chunk_begin[mid] <= chunk) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const SgdTensor& t = launch.tensors[lo];
    const long long begin = (chunk - launch.chunk_begin[lo]) * kChunk;
    const long long end = begin + kChunk < t.n ? begin + kChunk : t.n;
    for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) {
      float d = t.grad[i] + t.weight_decay * t.param[i];
      if (t.momentum_buffer != nullptr) {
        const float buf =
            t.first_step ? d : t.momentum * t.momentum_buffer[i] + (1.0f - t.dampening) * d;
        t.momentum_buffer[i] = buf;
        d = t.nesterov ? d + t.momentum * buf : buf;
      }
      t.param[i] -= t.lr * d;
    }
  }
}

void launch_batch(SgdLaunch& launch) {
  const long long chunks = launch.chunk_begin[launch.count];
  if (chunks == 0) return;
  FLEXNN_LAUNCH(sgd_kernel, dim3(static_cast<unsigned>(chunks < kMaxBlocks ? chunks : kMaxBlocks)), dim3(kThreads),
                0, stream(), launch);
}

}  // namespace

void sgd_update(const SgdTensor* tensors, int64_t count) {
  SgdLaunch launch{};
  for (int64_t k = 0; k < count; ++k) {
    if (launch.count == kMaxSgdTensorsPerLaunch) {
      launch_batch(launch);
      launch.count = 0;
    }
    launch.tensors[launch.count] = tensors[k];
    launch.chunk_begin[launch.count + 1] = launch.chunk_begin[launch.count] + (tensors[k].n + kChunk - 1) / kChunk;
    ++launch.count;
  }
  if (launch.count > 0) launch_batch(launch);
}

}  // namespace flexnn::cuda
