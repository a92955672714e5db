// log_softmax and cross-entropy on CUDA. Each softmax lane (or logits row) is a column of threads
// (see axis_layout.cuh) that keeps a running (max, sum of exp(x - max)) pair in one pass and merges
// the pairs in a fixed tree, so one read of the input gives both statistics. The loss is summed
// over rows in double by one block, in a fixed tree. Out-of-range targets are recorded by the row
// kernel on the device; the loss kernel then hands the record to page-locked host memory, where
// the host reads it without waiting for the device.
#include "kernels/cuda/softmax.hpp"

#include "kernels/cuda/axis_layout.cuh"
#include "kernels/cuda/error.hpp"

#include <atomic>
#include <cmath>
#include <string>

namespace flexnn::cuda {
namespace {

// (row << 32) | (uint32) value of an out-of-range target; the minimum over rows is the first one.
constexpr unsigned long long kNoError = ~0ULL;

// A lane's max and sum of exp(x - max) (the sum is 0 while the max is still -inf).
struct MaxSum {
  float max, sum;
};

// exp(x - max), with an x of -inf contributing 0 (the CPU's exp(-inf - max) for any finite max)
// rather than exp(-inf + inf) = NaN while max is still -inf; NaN and +inf propagate as on the CPU.
__device__ __forceinline__ float exp_from(float x, float max) { return x == -INFINITY ? 0.0f : expf(x - max); }

__device__ __forceinline__ MaxSum add_element(MaxSum a, float x) {
  if (x > a.max) return MaxSum{x, a.sum * exp_from(a.max, x) + exp_from(x, x)};  // exp_from(x, x): 1, NaN for +inf
  return MaxSum{a.max, a.sum + exp_from(x, a.max)};
}

struct MergeMaxSum {
  __device__ MaxSum operator()(MaxSum a, MaxSum b) const {
    const float max = fmaxf(a.max, b.max);
    return MaxSum{max, a.sum * exp_from(a.max, max) + b.sum * exp_from(b.max, max)};
  }
};

// The (max, sum) of the lane x[base + r * inner], r < reduced, for every thread of the lane.
__device__ __forceinline__ MaxSum lane_max_sum(const float* x, long long base, const AxisLayout& l, const AxisThread& t,
                                               MaxSum* stats) {
  MaxSum acc{-INFINITY, 0.0f};
  if (t.active)
    for (long long r = t.row; r < l.reduced; r += l.height) acc = add_element(acc, x[base + r * l.inner]);
  stats[t.slot] = acc;
  tree_reduce(stats, l, t, MergeMaxSum{});
  return stats[t.first_slot];
}

__global__ void log_softmax_forward_kernel(const float* x, float* y, AxisLayout l) {
  __shared__ MaxSum stats[kAxisThreads];
  const AxisThread t = axis_thread(l, blockIdx.x);
  const long long base = t.o * l.reduced * l.inner + t.i;
  const MaxSum total = lane_max_sum(x, base, l, t, stats);
  if (!t.active) return;
  const float logsum = logf(total.sum);
  for (long long r = t.row; r < l.reduced; r += l.height) {
    const long long at = base + r * l.inner;
    y[at] = (x[at] - total.max) - logsum;
  }
}

// The sum of dy is taken in double, as on the CPU.
__global__ void log_softmax_backward_kernel(const float* dy, const float* y, float* dx, AxisLayout l) {
  __shared__ double partial[kAxisThreads];
  const AxisThread t = axis_thread(l, blockIdx.x);
  const long long base = t.o * l.reduced * l.inner + t.i;
  double acc = 0.0;
  if (t.active)
    for (long long r = t.row; r < l.reduced; r += l.height) acc += dy[base + r * l.inner];
  partial[t.slot] = acc;
  tree_reduce(partial, l, t, Add{});
  const float total = static_cast<float>(partial[t.first_slot]);
  if (!t.active) return;
  for (long long r = t.row; r < l.reduced; r += l.height) {
    const long long at = base + r * l.inner;
    dx[at] = dy[at] - expf(y[at]) * total;
  }
}

// Per row (l viewing logits as [n, c, 1]): the max and log-sum, and the record of a bad target.
__global__ void cross_entropy_rows_kernel(const float* logits, const int64_t* targets, float* row_max,
                                          float* row_logsum, AxisLayout l, unsigned long long* bad) {
  __shared__ MaxSum stats[kAxisThreads];
  const AxisThread t = axis_thread(l, blockIdx.x);
  const MaxSum total = lane_max_sum(logits, t.o * l.reduced, l, t, stats);
  if (!t.active || t.row != 0) return;
  row_max[t.o] = total.max;
  row_logsum[t.o] = logf(total.sum);
  const long long target = targets[t.o];
  if (target < 0 || target >= l.reduced) {
    constexpr long long kLowest = -2147483647LL - 1, kHighest = 2147483647LL;
    const long long clamped = target < kLowest ? kLowest : (target > kHighest ? kHighest : target);
    atomicMin(bad, (static_cast<unsigned long long>(t.o) << 32) | static_cast<unsigned>(static_cast<int>(clamped)));
  }
}

// One block (l viewing the n row losses as [1, n, 1]): loss[0] = the rows' mean, summed in double;
// then thread 0 moves a recorded bad target to the host's record (unless one is still unread there).
__global__ void cross_entropy_loss_kernel(const float* logits, const int64_t* targets, const float* row_max,
                                          const float* row_logsum, long long c, AxisLayout l, float* loss,
                                          unsigned long long* bad, volatile unsigned long long* reported) {
  __shared__ double partial[kAxisThreads];
  const AxisThread t = axis_thread(l, 0);
  double acc = 0.0;
  if (t.active)
    for (long long r = t.row; r < l.reduced; r += l.height) {
      const long long target = targets[r];
      acc += target >= 0 && target < c ? (static_cast<double>(row_max[r]) - logits[r * c + target]) + row_logsum[r]
                                       : static_cast<double>(NAN);
    }
  partial[t.slot] = acc;
  tree_reduce(partial, l, t, Add{});
  if (t.slot != 0) return;
  *loss = static_cast<float>(partial[0] / static_cast<double>(l.reduced));
  if (*bad != kNoError) {
    if (*reported == kNoError) *reported = *bad;
    *bad = kNoError;
  }
}

__global__ void cross_entropy_backward_kernel(const float* logits, const int64_t* targets, const float* row_max,
                                              const float* row_logsum, long long n, long long c, const float* grad,
                                              float* dlogits) {
  const float scale = grad[0] / static_cast<float>(n);
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < n * c;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = k / c;
    dlogits[k] = scale * (expf((logits[k] - row_max[r]) - row_logsum[r]) - (k % c == targets[r] ? 1.0f : 0.0f));
  }
}

// The bad-target records: the kernels' (device memory) and the host's (page-locked, which the
// kernels write directly). Created on the first cross_entropy_forward; never freed, like the stream.
struct TargetRecords {
  unsigned long long* device = nullptr;
  unsigned long long* host = nullptr;
};

std::atomic<TargetRecords*> records{nullptr};

TargetRecords& target_records() {
  static TargetRecords* instance = [] {
    auto* r = new TargetRecords();
    FLEXNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&r->device), sizeof(unsigned long long)));
    FLEXNN_CUDA_CHECK(cudaMemsetAsync(r->device, 0xff, sizeof(unsigned long long), stream()));
    FLEXNN_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&r->host), sizeof(unsigned long long)));
    *r->host = kNoError;
    records.store(r);
    return r;
  }();
  return *instance;
}

}  // namespace

void log_softmax_forward(const float* x, SoftmaxShape s, float* y) {
  if (s.outer * s.dim * s.inner == 0) return;
  const AxisLayout l = axis_layout(s.outer, s.dim, s.inner);
  FLEXNN_LAUNCH(log_softmax_forward_kernel, dim3(static_cast<unsigned>(l.item_blocks)), dim3(kAxisThreads), 0, stream(),
                x, y, l);
}

void log_softmax_backward(const float* dy, const float* y, SoftmaxShape s, float* dx) {
  if (s.outer * s.dim * s.inner == 0) return;
  const AxisLayout l = axis_layout(s.outer, s.dim, s.inner);
  FLEXNN_LAUNCH(log_softmax_backward_kernel, dim3(static_cast<unsigned>(l.item_blocks)), dim3(kAxisThreads), 0,
                stream(), dy, y, dx, l);
}

void cross_entropy_forward(const float* logits, const int64_t* targets, int64_t n, int64_t c, float* row_max,
                           float* row_logsum, float* loss) {
  if (n >= 0xffffffffLL)
    raise_error("CUDA cross_entropy: " + std::to_string(n) + " rows, at most 4294967294 supported");
  TargetRecords& r = target_records();
  if (n > 0) {
    const AxisLayout rows = axis_layout(n, c, 1);
    FLEXNN_LAUNCH(cross_entropy_rows_kernel, dim3(static_cast<unsigned>(rows.item_blocks)), dim3(kAxisThreads), 0,
                  stream(), logits, targets, row_max, row_logsum, rows, r.device);
  }
  FLEXNN_LAUNCH(cross_entropy_loss_kernel, dim3(1), dim3(kAxisThreads), 0, stream(), logits, targets, row_max,
                row_logsum, static_cast<long long>(c), axis_layout(1, n, 1), loss, r.device, r.host);
}

void cross_entropy_backward(const float* logits, const int64_t* targets, const float* row_max, const float* row_logsum,
                            int64_t n, int64_t c, const float* grad, float* dlogits) {
  const long long total = static_cast<long long>(n) * c;
  if (total <= 0) return;
  FLEXNN_LAUNCH(cross_entropy_backward_kernel, dim3(blocks_for(total)), dim3(256), 0, stream(), logits, targets,
                row_max, row_logsum, static_cast<long long>(n), static_cast<long long>(c), grad, dlogits);
}

bool take_target_error(TargetError& error) {
  TargetRecords* r = records.load();
  if (r == nullptr) return false;
  const unsigned long long key = std::atomic_ref<unsigned long long>(*r->host).exchange(kNoError);
  if (key == kNoError) return false;
  error.row = static_cast<int64_t>(key >> 32);
  error.value = static_cast<int>(static_cast<unsigned>(key & 0xffffffffULL));
  return true;
}

}  // namespace flexnn::cuda
