// Axis reductions on CUDA. sum and max give each output lane a column of threads (see
// axis_layout.cuh) that strides the reduced axis and meets in a shared-memory tree; a sum with too
// few outputs to fill the GPU also splits the reduced axis into chunks (a count fixed by the shape
// alone), writes per-chunk partials to a workspace and adds them in a second pass. Sums accumulate
// in double like the CPU's (the loads, not the adds, bound their speed), so the two agree to about
// the final rounding. expand and the max backward are plain element-wise grid-stride loops.
#include "kernels/cuda/reduce.hpp"

#include "kernels/cuda/axis_layout.cuh"
#include "kernels/cuda/error.hpp"

#include <cmath>
#include <mutex>
#include <string>

namespace flexnn::cuda {
namespace {

// A sum is split once it would run on fewer blocks than this (a constant, not the device's SM
// count, so the partition and hence the rounding is the same on every GPU)...
constexpr long long kTargetBlocks = 512;
// ...into chunks of at least this many elements per thread.
constexpr long long kMinPerThread = 16;
// A split happens only when a block spans every lane of its item (groups == 1) and fewer than
// kTargetBlocks items exist, so partials never exceed 2 * kTargetBlocks chunk-items of 32 lanes.
constexpr long long kWorkspaceSums = 2 * kTargetBlocks * 32;

// Sums rows [chunk * chunk_len, (chunk + 1) * chunk_len) of the reduced axis into
// out[chunk][o][i] (the chunk index is blockIdx.x / item_blocks).
template <typename In, typename Out>
__global__ void sum_kernel(const In* x, Out* out, AxisLayout l, long long chunk_len) {
  __shared__ double partial[kAxisThreads];
  const long long chunk = blockIdx.x / l.item_blocks;
  const AxisThread t = axis_thread(l, blockIdx.x % l.item_blocks);
  const long long begin = chunk * chunk_len;
  const long long end = begin + chunk_len < l.reduced ? begin + chunk_len : l.reduced;
  double acc = 0.0;
  if (t.active)
    for (long long r = begin + t.row; r < end; r += l.height) acc += x[(t.o * l.reduced + r) * l.inner + t.i];
  partial[t.slot] = acc;
  tree_reduce(partial, l, t, Add{});
  if (t.active && t.row == 0) out[(chunk * l.outer + t.o) * l.inner + t.i] = static_cast<Out>(partial[t.slot]);
}

struct ValueIndex {
  float value;
  long long index;
};

// The larger of two candidates: NaN beats any number, and ties go to the lower index, so the tree
// picks the same element as the CPU's first-maximum scan.
struct FirstMax {
  __device__ ValueIndex operator()(ValueIndex a, ValueIndex b) const {
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.value != b.value) return a.value > b.value ? a : b;
    return a.index < b.index ? a : b;
  }
};

__global__ void max_kernel(const float* x, float* out, int64_t* index, AxisLayout l) {
  __shared__ ValueIndex best[kAxisThreads];
  const AxisThread t = axis_thread(l, blockIdx.x);
  ValueIndex acc{-INFINITY, 0x7fffffffffffffffLL};  // loses to any element
  if (t.active)
    for (long long r = t.row; r < l.reduced; r += l.height)
      acc = FirstMax{}(acc, ValueIndex{x[(t.o * l.reduced + r) * l.inner + t.i], r});
  best[t.slot] = acc;
  tree_reduce(best, l, t, FirstMax{});
  if (t.active && t.row == 0) {
    out[t.o * l.inner + t.i] = best[t.slot].value;
    index[t.o * l.inner + t.i] = best[t.slot].index;
  }
}

__global__ void expand_kernel(const float* dy, float* dx, long long n, long long reduced, long long inner) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<long long>(gridDim.x) * blockDim.x)
    dx[k] = dy[k / (reduced * inner) * inner + k % inner];
}

__global__ void max_backward_kernel(const float* dy, const int64_t* index, float* dx, long long n, long long reduced,
                                    long long inner) {
  for (long long k = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long at = k / (reduced * inner) * inner + k % inner;
    dx[k] = index[at] == (k / inner) % reduced ? dy[at] : 0.0f;
  }
}

// The second pass's input: partial sums in double, allocated on first use and reused by every
// later sum (all on the one stream, so one sum's passes finish before the next sum's start). The
// mutex keeps two host threads from interleaving their passes.
struct Workspace {
  std::mutex mutex;
  double* data = nullptr;
};

Workspace& workspace() {
  static Workspace* instance = new Workspace();  // never freed, like the stream
  return *instance;
}

template <typename In, typename Out>
void launch_sum(const In* x, Out* out, const AxisLayout& l, long long chunks, long long chunk_len) {
  FLEXNN_LAUNCH((sum_kernel<In, Out>), dim3(static_cast<unsigned>(l.item_blocks * chunks)), dim3(kAxisThreads), 0,
                stream(), x, out, l, chunk_len);
}

}  // namespace

void sum_axis(const float* x, float* out, ReduceShape s) {
  if (s.outer * s.inner == 0) return;
  const AxisLayout l = axis_layout(s.outer, s.reduced, s.inner);
  long long chunks = 1;
  if (l.item_blocks < kTargetBlocks) {
    const long long wanted = (kTargetBlocks + l.item_blocks - 1) / l.item_blocks;
    const long long most = (s.reduced + l.height * kMinPerThread - 1) / (l.height * kMinPerThread);
    chunks = wanted < most ? wanted : most;
  }
  if (chunks <= 1) return launch_sum(x, out, l, 1, s.reduced);
  const long long chunk_len = (s.reduced + chunks - 1) / chunks;
  chunks = (s.reduced + chunk_len - 1) / chunk_len;
  const long long outputs = s.outer * s.inner;
  if (chunks * outputs > kWorkspaceSums)
    raise_error("CUDA sum_axis: " + std::to_string(chunks * outputs) + " partial sums exceed the workspace of " +
                std::to_string(kWorkspaceSums));
  Workspace& w = workspace();
  const std::lock_guard<std::mutex> lock(w.mutex);
  if (w.data == nullptr)
    FLEXNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&w.data), kWorkspaceSums * sizeof(double)));
  launch_sum(x, w.data, l, chunks, chunk_len);
  launch_sum(w.data, out, axis_layout(1, chunks, outputs), 1, chunks);
}

void max_axis(const float* x, float* out, int64_t* index, ReduceShape s) {
  if (s.outer * s.inner == 0) return;
  const AxisLayout l = axis_layout(s.outer, s.reduced, s.inner);
  FLEXNN_LAUNCH(max_kernel, dim3(static_cast<unsigned>(l.item_blocks)), dim3(kAxisThreads), 0, stream(), x, out, index,
                l);
}

void expand_axis(const float* dy, float* dx, ReduceShape s) {
  const long long n = s.outer * s.reduced * s.inner;
  if (n <= 0) return;
  FLEXNN_LAUNCH(expand_kernel, dim3(blocks_for(n)), dim3(256), 0, stream(), dy, dx, n,
                static_cast<long long>(s.reduced), static_cast<long long>(s.inner));
}

void max_axis_backward(const float* dy, const int64_t* index, float* dx, ReduceShape s) {
  const long long n = s.outer * s.reduced * s.inner;
  if (n <= 0) return;
  FLEXNN_LAUNCH(max_backward_kernel, dim3(blocks_for(n)), dim3(256), 0, stream(), dy, index, dx, n,
                static_cast<long long>(s.reduced), static_cast<long long>(s.inner));
}

}  // namespace flexnn::cuda
