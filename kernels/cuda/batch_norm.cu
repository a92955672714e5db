// Batch normalisation on a CUDA device, on [n, c, hw]. The statistics and the backward run one
// block per channel: each thread sums its share of the channel's elements in double, then a
// shared-memory tree combines the partial sums in a fixed order, so results depend only on the
// shape (never on scheduling) and match the CPU's double sums up to their summation order. The
// backward block then writes dx for its channel from those sums (one kernel, no scratch). The
// forward is element-wise over the whole tensor, walking channels without a division per element.
#include "kernels/cuda/batch_norm.hpp"

#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {
namespace {

constexpr int kThreads = 256;  // the block reductions assume exactly this many threads
constexpr long long kMaxChannelBlocks = 65535;
// The forward's threads take several elements each, so the divisions that place a thread's first
// element are paid once for all of them.
constexpr long long kForwardElementsPerThread = 4;

// Calls f(index) for this thread's share of channel c's n * hw elements: element (n, j) of the
// channel is at (n * s.c + c) * s.hw + j, and the block's threads take consecutive (n, j) pairs.
template <typename F>
__device__ __forceinline__ void for_each_in_channel(BatchNormShape s, long long c, F f) {
  if (s.hw == 0) return;
  const long long step_n = blockDim.x / s.hw, step_j = blockDim.x % s.hw;
  long long n = threadIdx.x / s.hw, j = threadIdx.x % s.hw;
  while (n < s.n) {
    f((n * s.c + c) * s.hw + j);
    n += step_n;
    j += step_j;
    if (j >= s.hw) {
      j -= s.hw;
      ++n;
    }
  }
}

// The block-wide sums of a and b (every thread gets them), combined in a fixed tree order.
__device__ void block_sum(double& a, double& b) {
  __shared__ double sum_a[kThreads], sum_b[kThreads];
  const unsigned t = threadIdx.x;
  sum_a[t] = a;
  sum_b[t] = b;
  __syncthreads();
  for (unsigned stride = kThreads / 2; stride > 0; stride /= 2) {
    if (t < stride) {
      sum_a[t] += sum_a[t + stride];
      sum_b[t] += sum_b[t + stride];
    }
    __syncthreads();
  }
  a = sum_a[0];
  b = sum_b[0];
  __syncthreads();  // the arrays are free for the next call
}

__global__ void stats_kernel(const float* x, BatchNormShape s, float eps, float momentum, float* mean,
                             float* invstd, float* running_mean, float* running_var) {
  const double count = static_cast<double>(s.n * s.hw);
  for (long long c = blockIdx.x; c < s.c; c += gridDim.x) {
    double total = 0, unused = 0;
    for_each_in_channel(s, c, [&](long long i) { total += static_cast<double>(x[i]); });
    block_sum(total, unused);
    const double mu = total / count;
    double squares = 0;
    for_each_in_channel(s, c, [&](long long i) {
      const double d = static_cast<double>(x[i]) - mu;
      squares += d * d;
    });
    block_sum(squares, unused);
    if (threadIdx.x != 0) continue;
    const double var = squares / count;
    mean[c] = static_cast<float>(mu);
    invstd[c] = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
    if (running_mean != nullptr) {
      running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
      running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * squares / (count - 1.0));
    }
  }
}

__global__ void invstd_kernel(const float* var, long long c, float eps, float* invstd) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < c;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    invstd[i] = static_cast<float>(1.0 / sqrt(static_cast<double>(var[i]) + static_cast<double>(eps)));
}

// Grid-stride over all elements; the channel of element i is (i / hw) % c, kept up to date by
// the per-step increments of the row position (step_j) and of the channel (step_c).
__global__ void forward_kernel(const float* x, const float* mean, const float* invstd, const float* weight,
                               const float* bias, BatchNormShape s, float* y) {
  const long long total = s.n * s.c * s.hw;
  const long long step = static_cast<long long>(gridDim.x) * blockDim.x;
  long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const long long step_j = step % s.hw, step_c = (step / s.hw) % s.c;
  long long j = i % s.hw, c = (i / s.hw) % s.c;
  for (; i < total; i += step) {
    const float scale = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
    const float shift = bias != nullptr ? bias[c] : 0.0f;
    y[i] = (x[i] - mean[c]) * scale + shift;
    j += step_j;
    c += step_c;
    if (j >= s.hw) {
      j -= s.hw;
      ++c;
    }
    if (c >= s.c) c -= s.c;
  }
}

// dx = scale * (dy - dy_mean - (x - mean) * x_coef) per channel (the CPU kernel's formula), with
// the sums of dy and dy * (x - mean) when the statistics' terms, dweight or dbias need them.
__global__ void backward_kernel(const float* dy, const float* x, const float* mean, const float* invstd,
                                const float* weight, BatchNormShape s, bool batch_stats, bool need_sums, float* dx,
                                float* dweight, float* dbias) {
  const double count = static_cast<double>(s.n * s.hw);
  for (long long c = blockIdx.x; c < s.c; c += gridDim.x) {
    const float mu = mean[c];
    double sum_dy = 0, sum_dy_xc = 0;
    if (need_sums) {
      const double mu_d = mu;
      for_each_in_channel(s, c, [&](long long i) {
        sum_dy += static_cast<double>(dy[i]);
        sum_dy_xc += static_cast<double>(dy[i]) * (static_cast<double>(x[i]) - mu_d);
      });
      block_sum(sum_dy, sum_dy_xc);
    }
    const double sum_dy_xhat = sum_dy_xc * invstd[c];
    if (threadIdx.x == 0) {
      if (dbias != nullptr) dbias[c] = static_cast<float>(sum_dy);
      if (dweight != nullptr) dweight[c] = static_cast<float>(sum_dy_xhat);
    }
    if (dx == nullptr) continue;
    const float k = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
    const float dy_mean = batch_stats ? static_cast<float>(sum_dy / count) : 0.0f;
    const float x_coef = batch_stats ? static_cast<float>(sum_dy_xhat * invstd[c] / count) : 0.0f;
    for_each_in_channel(s, c, [&](long long i) { dx[i] = k * (dy[i] - dy_mean - (x[i] - mu) * x_coef); });
  }
}

__global__ void count_batch_kernel(int64_t* counter) { ++*counter; }

unsigned channel_blocks(long long c) { return static_cast<unsigned>(c < kMaxChannelBlocks ? c : kMaxChannelBlocks); }

}  // namespace

void batch_norm_stats(const float* x, BatchNormShape s, float eps, float momentum, float* mean, float* invstd,
                      float* running_mean, float* running_var) {
  if (s.c <= 0) return;
  FLEXNN_LAUNCH(stats_kernel, dim3(channel_blocks(s.c)), dim3(kThreads), 0, stream(), x, s, eps, momentum, mean,
                invstd, running_mean, running_var);
}

void batch_norm_invstd(const float* var, int64_t c, float eps, float* invstd) {
  if (c <= 0) return;
  FLEXNN_LAUNCH(invstd_kernel, dim3(blocks_for(c, kThreads)), dim3(kThreads), 0, stream(), var,
                static_cast<long long>(c), eps, invstd);
}

void batch_norm_forward(const float* x, const float* mean, const float* invstd, const float* weight,
                        const float* bias, BatchNormShape s, float* y) {
  const long long total = s.n * s.c * s.hw;
  if (total <= 0) return;
  const long long threads = (total + kForwardElementsPerThread - 1) / kForwardElementsPerThread;
  FLEXNN_LAUNCH(forward_kernel, dim3(blocks_for(threads, kThreads)), dim3(kThreads), 0, stream(), x, mean, invstd,
                weight, bias, s, y);
}

void batch_norm_backward(const float* dy, const float* x, const float* mean, const float* invstd,
                         const float* weight, BatchNormShape s, bool batch_stats, float* dx, float* dweight,
                         float* dbias) {
  if (s.c <= 0) return;
  const bool need_sums = batch_stats || dweight != nullptr || dbias != nullptr;
  FLEXNN_LAUNCH(backward_kernel, dim3(channel_blocks(s.c)), dim3(kThreads), 0, stream(), dy, x, mean, invstd, weight,
                s, batch_stats, need_sums, dx, dweight, dbias);
}

void batch_norm_count_batch(int64_t* num_batches_tracked) {
  FLEXNN_LAUNCH(count_batch_kernel, dim3(1), dim3(1), 0, stream(), num_batches_tracked);
}

}  // namespace flexnn::cuda
