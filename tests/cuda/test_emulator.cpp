// The CPU emulation of CUDA, its execution model: block barriers and shared memory (a tree reduction,
// a tiled transpose), warp shuffles and votes against CPU models of CUDA's lane rules, 2-D and 3-D
// indices, atomics, dynamic shared memory, launch validation, deadlocks and misuse reported as
// flexnn::Error naming the kernel and the block, exceptions inside a kernel, and the launch cost.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

#include "kernels/cuda/cuda_compat.cuh"
#include "test_helpers.hpp"

using flexnn::testing::error_message;

namespace {

// ---- kernels (valid CUDA: they compile under nvcc as they are) ----

// Per-block sums with a shared-memory tree for any block size (the pairs of each level are stride
// apart; the partner must exist).
__global__ void block_sum(const float* x, float* partial, int n) {
  __shared__ float buf[1024];
  const unsigned t = threadIdx.x;
  const int i = static_cast<int>(blockIdx.x * blockDim.x + t);
  buf[t] = i < n ? x[i] : 0.0f;
  __syncthreads();
  for (unsigned stride = 1; stride < blockDim.x; stride *= 2) {
    if (t % (2 * stride) == 0 && t + stride < blockDim.x) buf[t] += buf[t + stride];
    __syncthreads();
  }
  if (t == 0) partial[blockIdx.x] = buf[0];
}

// out = in^T for a rows x cols matrix, through a 2-D shared tile (padded against bank conflicts).
__global__ void transpose(const float* in, float* out, int rows, int cols) {
  __shared__ float tile[16][17];
  const int c = static_cast<int>(blockIdx.x * 16 + threadIdx.x), r = static_cast<int>(blockIdx.y * 16 + threadIdx.y);
  if (r < rows && c < cols) tile[threadIdx.y][threadIdx.x] = in[r * cols + c];
  __syncthreads();
  const int out_r = static_cast<int>(blockIdx.x * 16 + threadIdx.y),
            out_c = static_cast<int>(blockIdx.y * 16 + threadIdx.x);
  if (out_r < cols && out_c < rows) out[out_r * rows + out_c] = tile[threadIdx.x][threadIdx.y];
}

__global__ void warp_reductions(const int* x, int* down, int* butterfly) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  int v = x[i], w = x[i];
  for (unsigned offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  for (int mask = 16; mask > 0; mask /= 2) w += __shfl_xor_sync(0xffffffffu, w, mask);
  down[i] = v;
  butterfly[i] = w;
}

// Segmented (width 8) inclusive scan with __shfl_up_sync, a broadcast within 8-lane segments with an
// out-of-range srcLane, and a float xor across 16-lane segments.
__global__ void warp_segments(const float* x, float* scan, float* broadcast, float* cross) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const unsigned lane = threadIdx.x % 32;
  float v = x[i];
  for (unsigned d = 1; d < 8; d *= 2) {
    const float y = __shfl_up_sync(0xffffffffu, v, d, 8);
    if (lane % 8 >= d) v += y;
  }
  scan[i] = v;
  broadcast[i] = __shfl_sync(0xffffffffu, x[i], 11, 8);  // 11 wraps to lane 3 of the segment
  cross[i] = __shfl_xor_sync(0xffffffffu, x[i], 16, 16);
}

__global__ void votes(const int* predicate, unsigned* ballot, int* any, int* all, unsigned* active, unsigned* half) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const unsigned lane = threadIdx.x % 32;
  const int p = predicate[i];
  ballot[i] = __ballot_sync(0xffffffffu, p);
  any[i] = __any_sync(0xffffffffu, p);
  all[i] = __all_sync(0xffffffffu, p);
  active[i] = __activemask();
  __syncwarp();
  // Two independent half-warp groups at once.
  const unsigned group = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  half[i] = __ballot_sync(group, p);
}

__global__ void barrier_counts(const int* predicate, int* count, int* all, int* any) {
  const int p = predicate[blockIdx.x * blockDim.x + threadIdx.x];
  const int c = __syncthreads_count(p), a = __syncthreads_and(p), o = __syncthreads_or(p);
  if (threadIdx.x == 0) {
    count[blockIdx.x] = c;
    all[blockIdx.x] = a;
    any[blockIdx.x] = o;
  }
}

// Each thread writes its indices into the slot its indices select: wrong indices leave slots empty.
__global__ void record_indices(int* out, unsigned* dims) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  int* slot = out + 6 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
  slot[0] = static_cast<int>(blockIdx.x);
  slot[1] = static_cast<int>(blockIdx.y);
  slot[2] = static_cast<int>(blockIdx.z);
  slot[3] = static_cast<int>(threadIdx.x);
  slot[4] = static_cast<int>(threadIdx.y);
  slot[5] = static_cast<int>(threadIdx.z);
  if (block == 0 && thread == 0) {
    const unsigned values[6] = {blockDim.x, blockDim.y, blockDim.z, gridDim.x, gridDim.y, gridDim.z};
    for (int d = 0; d < 6; ++d) dims[d] = values[d];
  }
}

// Lane 0 of each warp broadcasts its threadIdx.y: warps are 32 consecutive linear thread ids.
__global__ void warp_of_2d_block(int* out) {
  const unsigned thread = threadIdx.y * blockDim.x + threadIdx.x;
  out[thread] = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.y), 0);
}

__global__ void atomics(int* counter, float* fsum, unsigned long long* big, double* dsum, int* maximum, int* minimum,
                        unsigned* wrapped, int* cas_sum, int* sub, int* histogram) {
  __shared__ int local[8];
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (threadIdx.x < 8) local[threadIdx.x] = 0;
  __syncthreads();
  atomicAdd(counter, 1);
  atomicAdd(fsum, 0.5f);
  atomicAdd(big, 1ull << 33);
  atomicAdd(dsum, 0.25);
  atomicMax(maximum, (i * 7919) % 10007);
  atomicMin(minimum, (i * 7919) % 10007 - 5000);
  atomicInc(wrapped, 9u);  // counts modulo 10
  int old = *cas_sum, assumed;
  do {
    assumed = old;
    old = atomicCAS(cas_sum, assumed, assumed + i);
  } while (assumed != old);
  atomicSub(sub, 3);
  atomicAdd(&local[i % 8], 1);
  __syncthreads();
  if (threadIdx.x < 8) atomicAdd(&histogram[threadIdx.x], local[threadIdx.x]);
}

// Reverses each block's segment through dynamic shared memory, seen as floats and as raw ints.
__global__ void reverse_segments(const float* in, float* out, int* bits, int n) {
  FLEXNN_DYNAMIC_SHARED(float, s);
  FLEXNN_DYNAMIC_SHARED(int, as_int);
  const unsigned t = threadIdx.x;
  const int i = static_cast<int>(blockIdx.x * blockDim.x + t);
  s[t] = i < n ? in[i] : -1.0f;
  __syncthreads();
  const int j = static_cast<int>(blockIdx.x * blockDim.x + (blockDim.x - 1 - t));
  if (j < n) {
    out[j] = s[t];
    bits[j] = as_int[t];
  }
}

// Each thread changes its own copy of the parameter: CUDA passes arguments by value.
__global__ void private_parameter(int base, int* out) {
  base += static_cast<int>(threadIdx.x);
  out[threadIdx.x] = base;
}

template <typename T, int Factor>
__global__ void scale(T* y, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] *= Factor;
}

__device__ int launches_without_arguments = 0;  // read directly by the host: only in the emulator
__global__ void no_arguments() {
  if (threadIdx.x == 0 && blockIdx.x == 0) ++launches_without_arguments;
}

__global__ void axpy(float a, const float* x, float* y, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = a * x[i] + y[i];
}

// ---- misbehaving kernels (the last two call host code: emulator only) ----

__global__ void half_skips_barrier(int* out) {
  if (blockIdx.x == 1 && threadIdx.x >= blockDim.x / 2) return;
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

__global__ void first_thread_exits(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Lane 0 waits at a shuffle for lanes that wait at __syncthreads: nobody exits, nobody can proceed.
__global__ void shuffle_against_barrier(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x == 0) v = __shfl_sync(0xffffffffu, v, 1);
  __syncthreads();
  out[threadIdx.x] = v;
}

__global__ void lane_exits_before_shuffle(int* out, int exiting_lane) {
  if (static_cast<int>(threadIdx.x) == exiting_lane) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void mixed_warp_operations(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 2 == 1) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else {
    __syncwarp();
  }
  out[threadIdx.x] = v;
}

__global__ void shuffle_outside_mask(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, static_cast<int>(threadIdx.x), 8);
}

__global__ void full_mask_in_partial_warp(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void throws_at(int* out, int bad) {
  const int t = static_cast<int>(threadIdx.x);
  out[t] = 1;
  __syncthreads();
  FLEXNN_CHECK(t != bad, "thread {} refuses to continue", t);
  __syncthreads();
  out[t] = 2;
}

__global__ void launches_from_kernel(int* out) {
  if (threadIdx.x == 0) FLEXNN_LAUNCH(no_arguments, 1, 1, 0, 0);
  out[threadIdx.x] = 1;
}

// ---- host helpers ----

// Device buffers for the duration of a test.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) { FLEXNN_CUDA_CHECK(cudaMalloc(&data_, bytes())); }
  explicit DeviceBuffer(const std::vector<T>& values) : DeviceBuffer(values.size()) { upload(values); }
  ~DeviceBuffer() { (void)cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return data_; }
  std::size_t bytes() const { return count_ * sizeof(T); }
  void upload(const std::vector<T>& values) {
    FLEXNN_CUDA_CHECK(cudaMemcpy(data_, values.data(), bytes(), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> values(count_);
    FLEXNN_CUDA_CHECK(cudaMemcpy(values.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return values;
  }

 private:
  T* data_ = nullptr;
  std::size_t count_;
};

std::vector<float> small_integers(int n, int seed) {
  std::vector<float> values(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) values[static_cast<std::size_t>(i)] = static_cast<float>((i * 7 + seed) % 13 - 6);
  return values;
}

// Block sums with the emulator, checked exactly (integer-valued floats add exactly).
void check_block_sums(int n, unsigned threads) {
  const std::vector<float> x = small_integers(n, 3);
  const unsigned blocks = (static_cast<unsigned>(n) + threads - 1) / threads;
  DeviceBuffer<float> dx(x), dpartial(blocks);
  FLEXNN_LAUNCH(block_sum, dim3(blocks), dim3(threads), 0, 0, dx.get(), dpartial.get(), n);
  const std::vector<float> partial = dpartial.download();
  for (unsigned b = 0; b < blocks; ++b) {
    float expected = 0.0f;
    for (unsigned i = b * threads; i < std::min<unsigned>((b + 1) * threads, static_cast<unsigned>(n)); ++i) {
      expected += x[i];
    }
    INFO("n " << n << ", " << threads << " threads per block, block " << b);
    REQUIRE(partial[b] == expected);
  }
}

}  // namespace

TEST_CASE("a shared-memory tree reduction with __syncthreads sums every block", "[cuda][emulator]") {
  check_block_sums(1000, 256);   // 4 blocks, the last partial
  check_block_sums(4097, 1024);  // 5 blocks of the largest size
  check_block_sums(777, 96);     // a block size that is no power of two
  check_block_sums(31, 32);      // one partial block
  check_block_sums(300, 1);      // one thread per block
}

TEST_CASE("host threads launch at the same time, each with its own fibers and shared memory", "[cuda][emulator]") {
  // Catch's assertions are not thread-safe: the threads count wrong block sums, the check comes after.
  const int n = 100000;
  const unsigned threads = 256, blocks = (n + threads - 1) / threads;
  std::vector<int> wrong(2, 0);
  std::vector<std::thread> launchers;
  for (int h = 0; h < 2; ++h) {
    launchers.emplace_back([&, h] {
      const std::vector<float> x = small_integers(n, h);
      std::vector<float> expected(blocks, 0.0f);
      for (int i = 0; i < n; ++i) expected[static_cast<unsigned>(i) / threads] += x[static_cast<std::size_t>(i)];
      DeviceBuffer<float> dx(x), dpartial(blocks);
      for (int repeat = 0; repeat < 10; ++repeat) {
        FLEXNN_LAUNCH(block_sum, dim3(blocks), dim3(threads), 0, 0, dx.get(), dpartial.get(), n);
        if (dpartial.download() != expected) ++wrong[static_cast<std::size_t>(h)];
      }
    });
  }
  for (std::thread& launcher : launchers) launcher.join();
  CHECK(wrong == std::vector<int>{0, 0});
}

TEST_CASE("a tiled transpose through a 2-D __shared__ array", "[cuda][emulator]") {
  const int rows = 37, cols = 45;
  const std::vector<float> in = small_integers(rows * cols, 1);
  DeviceBuffer<float> din(in), dout(in.size());
  FLEXNN_LAUNCH(transpose, dim3((cols + 15) / 16, (rows + 15) / 16), dim3(16, 16), 0, 0, din.get(), dout.get(), rows,
                cols);
  const std::vector<float> out = dout.download();
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c)
      REQUIRE(out[static_cast<std::size_t>(c * rows + r)] == in[static_cast<std::size_t>(r * cols + c)]);
  }
}

TEST_CASE("warp-shuffle reductions follow CUDA's lane rules", "[cuda][emulator]") {
  const int n = 96;  // three warps
  std::vector<int> x(n);
  for (int i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = (i * 37) % 101 - 50;
  DeviceBuffer<int> dx(x), ddown(n), dbutterfly(n);
  FLEXNN_LAUNCH(warp_reductions, dim3(1), dim3(n), 0, 0, dx.get(), ddown.get(), dbutterfly.get());
  const std::vector<int> down = ddown.download(), butterfly = dbutterfly.download();
  for (int w = 0; w < n / 32; ++w) {
    // CPU model of the shfl_down tree: a lane whose source is past the warp keeps its own value.
    std::vector<int> v(x.begin() + w * 32, x.begin() + (w + 1) * 32);
    for (int offset = 16; offset > 0; offset /= 2) {
      const std::vector<int> before = v;
      for (int lane = 0; lane < 32; ++lane) v[lane] += lane + offset < 32 ? before[lane + offset] : before[lane];
    }
    const int total = std::accumulate(x.begin() + w * 32, x.begin() + (w + 1) * 32, 0);
    REQUIRE(v[0] == total);
    for (int lane = 0; lane < 32; ++lane) {
      INFO("warp " << w << " lane " << lane);
      REQUIRE(down[static_cast<std::size_t>(w * 32 + lane)] == v[static_cast<std::size_t>(lane)]);
      REQUIRE(butterfly[static_cast<std::size_t>(w * 32 + lane)] == total);
    }
  }
}

TEST_CASE("shuffles with a width: segmented scan, wrapped srcLane, xor into a later segment", "[cuda][emulator]") {
  const int n = 64;
  const std::vector<float> x = small_integers(n, 5);
  DeviceBuffer<float> dx(x), dscan(n), dbroadcast(n), dcross(n);
  FLEXNN_LAUNCH(warp_segments, dim3(2), dim3(32), 0, 0, dx.get(), dscan.get(), dbroadcast.get(), dcross.get());
  const std::vector<float> scan = dscan.download(), broadcast = dbroadcast.download(), cross = dcross.download();
  for (int i = 0; i < n; ++i) {
    const int lane = i % 32, segment = i - lane % 8;
    float prefix = 0.0f;
    for (int j = segment; j <= i; ++j) prefix += x[static_cast<std::size_t>(j)];
    INFO("thread " << i);
    REQUIRE(scan[static_cast<std::size_t>(i)] == prefix);
    REQUIRE(broadcast[static_cast<std::size_t>(i)] == x[static_cast<std::size_t>(segment + 3)]);
    // Lanes 0-15 would read the later segment: they keep their own value; lanes 16-31 read back.
    REQUIRE(cross[static_cast<std::size_t>(i)] == x[static_cast<std::size_t>(lane < 16 ? i : i - 16)]);
  }
}

TEST_CASE("ballot, any, all and __activemask, over whole and half warps", "[cuda][emulator]") {
  const int n = 96;
  std::vector<int> predicate(n);
  for (int i = 0; i < n; ++i)
    predicate[static_cast<std::size_t>(i)] = i < 32 ? 1 : (i < 64 ? 0 : (i * 5) % 3 == 1 ? 3 : 0);
  DeviceBuffer<int> dp(predicate), dany(n), dall(n);
  DeviceBuffer<unsigned> dballot(n), dactive(n), dhalf(n);
  FLEXNN_LAUNCH(votes, dim3(1), dim3(n), 0, 0, dp.get(), dballot.get(), dany.get(), dall.get(), dactive.get(),
                dhalf.get());
  const std::vector<unsigned> ballot = dballot.download(), active = dactive.download(), half = dhalf.download();
  const std::vector<int> any = dany.download(), all = dall.download();
  for (int w = 0; w < 3; ++w) {
    unsigned expected = 0;
    for (int lane = 0; lane < 32; ++lane)
      expected |= predicate[static_cast<std::size_t>(w * 32 + lane)] ? 1u << lane : 0u;
    for (int lane = 0; lane < 32; ++lane) {
      const auto i = static_cast<std::size_t>(w * 32 + lane);
      INFO("warp " << w << " lane " << lane);
      REQUIRE(ballot[i] == expected);
      REQUIRE(any[i] == (expected != 0 ? 1 : 0));
      REQUIRE(all[i] == (expected == 0xffffffffu ? 1 : 0));
      REQUIRE(active[i] == 0xffffffffu);
      REQUIRE(half[i] == (expected & (lane < 16 ? 0x0000ffffu : 0xffff0000u)));
    }
  }
  REQUIRE(ballot[64] != 0);  // the mixed warp is really mixed
  REQUIRE(ballot[64] != 0xffffffffu);
}

TEST_CASE("__syncthreads_count, _and and _or", "[cuda][emulator]") {
  const unsigned threads = 70;
  std::vector<int> predicate(3 * threads, 0);
  for (unsigned t = 0; t < threads; ++t) {
    predicate[t] = 1;                             // block 0: all
    predicate[threads + t] = t % 3 == 0 ? 5 : 0;  // block 1: some
  }                                               // block 2: none
  DeviceBuffer<int> dp(predicate), dcount(3), dall(3), dany(3);
  FLEXNN_LAUNCH(barrier_counts, dim3(3), dim3(threads), 0, 0, dp.get(), dcount.get(), dall.get(), dany.get());
  CHECK(dcount.download() == std::vector<int>{70, 24, 0});
  CHECK(dall.download() == std::vector<int>{1, 0, 0});
  CHECK(dany.download() == std::vector<int>{1, 1, 0});
}

TEST_CASE("2-D and 3-D launches give every thread its indices", "[cuda][emulator]") {
  for (const auto& [grid, block] : {std::pair{dim3(3, 2), dim3(4, 3)}, std::pair{dim3(3, 2, 2), dim3(4, 3, 2)},
                                    std::pair{dim3(1, 1, 5), dim3(1, 7, 3)}}) {
    const unsigned blocks = grid.x * grid.y * grid.z, threads = block.x * block.y * block.z;
    DeviceBuffer<int> out(6 * blocks * threads);
    DeviceBuffer<unsigned> dims(6);
    FLEXNN_LAUNCH(record_indices, grid, block, 0, 0, out.get(), dims.get());
    CHECK(dims.download() == std::vector<unsigned>{block.x, block.y, block.z, grid.x, grid.y, grid.z});
    const std::vector<int> slots = out.download();
    std::size_t k = 0;
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx)
          for (unsigned tz = 0; tz < block.z; ++tz)
            for (unsigned ty = 0; ty < block.y; ++ty)
              for (unsigned tx = 0; tx < block.x; ++tx, k += 6) {
                const std::vector<int> expected{int(bx), int(by), int(bz), int(tx), int(ty), int(tz)};
                REQUIRE(std::vector<int>(slots.begin() + static_cast<long>(k),
                                         slots.begin() + static_cast<long>(k + 6)) == expected);
              }
  }
  DeviceBuffer<int> lanes(64);
  FLEXNN_LAUNCH(warp_of_2d_block, dim3(1), dim3(8, 8), 0, 0, lanes.get());
  const std::vector<int> y = lanes.download();
  for (int t = 0; t < 64; ++t) REQUIRE(y[static_cast<std::size_t>(t)] == (t < 32 ? 0 : 4));
}

TEST_CASE("atomics from many threads and blocks", "[cuda][emulator]") {
  const unsigned blocks = 40, threads = 128, total = blocks * threads;
  DeviceBuffer<int> counter(std::vector<int>{0}), maximum(std::vector<int>{-1}), minimum(std::vector<int>{1 << 30}),
      cas_sum(std::vector<int>{0}), sub(std::vector<int>{100}), histogram(std::vector<int>(8, 0));
  DeviceBuffer<float> fsum(std::vector<float>{0.0f});
  DeviceBuffer<unsigned long long> big(std::vector<unsigned long long>{0});
  DeviceBuffer<double> dsum(std::vector<double>{0.0});
  DeviceBuffer<unsigned> wrapped(std::vector<unsigned>{0});
  FLEXNN_LAUNCH(atomics, dim3(blocks), dim3(threads), 0, 0, counter.get(), fsum.get(), big.get(), dsum.get(),
                maximum.get(), minimum.get(), wrapped.get(), cas_sum.get(), sub.get(), histogram.get());
  int expected_max = -1, expected_min = 1 << 30;
  for (unsigned i = 0; i < total; ++i) {
    expected_max = std::max(expected_max, static_cast<int>(i * 7919 % 10007));
    expected_min = std::min(expected_min, static_cast<int>(i * 7919 % 10007) - 5000);
  }
  CHECK(counter.download()[0] == static_cast<int>(total));
  CHECK(fsum.download()[0] == 0.5f * static_cast<float>(total));
  CHECK(big.download()[0] == (static_cast<unsigned long long>(total) << 33));
  CHECK(dsum.download()[0] == 0.25 * total);
  CHECK(maximum.download()[0] == expected_max);
  CHECK(minimum.download()[0] == expected_min);
  CHECK(wrapped.download()[0] == total % 10);
  CHECK(cas_sum.download()[0] == static_cast<int>(total * (total - 1) / 2));
  CHECK(sub.download()[0] == 100 - 3 * static_cast<int>(total));
  CHECK(histogram.download() == std::vector<int>(8, static_cast<int>(total / 8)));
}

TEST_CASE("dynamic shared memory is the launch's buffer, any type", "[cuda][emulator]") {
  const int n = 500;
  const unsigned threads = 200;  // 3 blocks, the last partial
  const std::vector<float> in = small_integers(n, 2);
  DeviceBuffer<float> din(in), dout(n);
  DeviceBuffer<int> dbits(n);
  FLEXNN_LAUNCH(reverse_segments, dim3(3), dim3(threads), threads * sizeof(float), 0, din.get(), dout.get(),
                dbits.get(), n);
  const std::vector<float> out = dout.download();
  const std::vector<int> bits = dbits.download();
  for (int i = 0; i < n; ++i) {
    const int block = i / static_cast<int>(threads), t = static_cast<int>(threads) - 1 - i % static_cast<int>(threads);
    const int source = block * static_cast<int>(threads) + t;
    const float expected = source < n ? in[static_cast<std::size_t>(source)] : -1.0f;
    INFO("element " << i);
    REQUIRE(out[static_cast<std::size_t>(i)] == expected);
    REQUIRE(bits[static_cast<std::size_t>(i)] == __float_as_int(expected));
  }
}

TEST_CASE("kernel arguments are converted and passed by value; template kernels and none", "[cuda][emulator]") {
  DeviceBuffer<int> out(64);
  FLEXNN_LAUNCH(private_parameter, dim3(1), dim3(64), 0, 0, 1000, out.get());
  const std::vector<int> values = out.download();
  for (int t = 0; t < 64; ++t) REQUIRE(values[static_cast<std::size_t>(t)] == 1000 + t);

  DeviceBuffer<float> y(std::vector<float>{1, 2, 3, 4, 5});
  const long n = 5;  // converted to the kernel's int
  FLEXNN_LAUNCH((scale<float, 3>), dim3(2), dim3(4), 0, 0, y.get(), n);
  CHECK(y.download() == std::vector<float>{3, 6, 9, 12, 15});

  const int before = launches_without_arguments;
  FLEXNN_LAUNCH(no_arguments, 2, 32, 0, 0);
  CHECK(launches_without_arguments == before + 1);
}

TEST_CASE("invalid launch configurations are errors naming the kernel and the value", "[cuda][emulator]") {
  DeviceBuffer<float> y(std::vector<float>(8, 1.0f));
  const auto launch = [&](dim3 grid, dim3 block, std::size_t shared) {
    return error_message([&] { FLEXNN_LAUNCH(axpy, grid, block, shared, 0, 2.0f, y.get(), y.get(), 8); });
  };
  CHECK_THAT(launch(1, 1025, 0), Catch::Contains("'axpy'") && Catch::Contains("1025") && Catch::Contains("1024"));
  CHECK_THAT(launch(1, dim3(64, 32), 0), Catch::Contains("2048 threads"));
  CHECK_THAT(launch(1, dim3(1, 1, 65), 0), Catch::Contains("(1,1,65)") && Catch::Contains("(1024,1024,64)"));
  CHECK_THAT(launch(0, 32, 0), Catch::Contains("'axpy'") && Catch::Contains("gridDim (0,1,1)"));
  CHECK_THAT(launch(dim3(1, 65536), 32, 0), Catch::Contains("(1,65536,1)") && Catch::Contains("65535"));
  CHECK_THAT(launch(1, 32, 48 * 1024 + 1),
             Catch::Contains("'axpy'") && Catch::Contains("49153") && Catch::Contains("49152"));
  CHECK(launch(1, 1024, 48 * 1024) == "(no flexnn::Error thrown)");  // the limits themselves are fine

  // cudaFuncSetAttribute raises the kernel's limit up to the opt-in maximum, as on sm_90.
  CHECK(cudaFuncSetAttribute(axpy, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024) == cudaErrorInvalidValue);
  REQUIRE(cudaFuncSetAttribute(axpy, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess);
  CHECK(launch(1, 32, 64 * 1024) == "(no flexnn::Error thrown)");
  CHECK_THAT(launch(1, 32, 64 * 1024 + 4), Catch::Contains("65540") && Catch::Contains("65536"));
  REQUIRE(cudaFuncSetAttribute(axpy, cudaFuncAttributeMaxDynamicSharedMemorySize, 48 * 1024) == cudaSuccess);

  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(axpy, 1, 8, 0, stream, 2.0f, y.get(), y.get(), 8); }),
             Catch::Contains("not a live stream"));

  DeviceBuffer<int> out(4);
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(launches_from_kernel, 1, 4, 0, 0, out.get()); }),
             Catch::Contains("'no_arguments' launched from inside a kernel"));
  CHECK(y.download() == std::vector<float>(8, 9.0f));  // the two valid launches ran (y = 3y), no other
}

TEST_CASE("a barrier that not every thread reaches is an error naming the kernel and the block", "[cuda][emulator]") {
  DeviceBuffer<int> out(3 * 64);
  const std::string skipped = error_message([&] { FLEXNN_LAUNCH(half_skips_barrier, 3, 64, 0, 0, out.get()); });
  CHECK_THAT(skipped, Catch::Contains("'half_skips_barrier'") && Catch::Contains("block (1,0,0)") &&
                          Catch::Contains("deadlock") && Catch::Contains("thread (32,0,0) exited") &&
                          Catch::Contains("32 thread(s) of the block wait"));

  // The other order: the barrier is reached after a thread has exited.
  const std::string after_exit = error_message([&] { FLEXNN_LAUNCH(first_thread_exits, 1, 64, 0, 0, out.get()); });
  CHECK_THAT(after_exit, Catch::Contains("'first_thread_exits'") && Catch::Contains("block (0,0,0)") &&
                             Catch::Contains("thread (1,0,0) reached the barrier after 1 thread(s)") &&
                             Catch::Contains("first: thread (0,0,0)"));

  // Nobody exits, but a warp operation and the block barrier wait for each other.
  const std::string stuck = error_message([&] { FLEXNN_LAUNCH(shuffle_against_barrier, 2, 64, 0, 0, out.get()); });
  CHECK_THAT(stuck,
             Catch::Contains("'shuffle_against_barrier'") && Catch::Contains("block (0,0,0)") &&
                 Catch::Contains("63 thread(s) wait at __syncthreads(), 1 at warp operations") &&
                 Catch::Contains("thread (0,0,0) waits at __shfl_sync with mask 0xffffffff for lanes 0xfffffffe"));

  check_block_sums(1000, 256);  // the emulator is still usable
}

TEST_CASE("warp operations with exited, missing or disagreeing lanes are errors", "[cuda][emulator]") {
  DeviceBuffer<int> out(64);
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(lane_exits_before_shuffle, 1, 32, 0, 0, out.get(), 5); }),
             Catch::Contains("'lane_exits_before_shuffle'") && Catch::Contains("thread (5,0,0) exited while lane 0") &&
                 Catch::Contains("__shfl_xor_sync"));
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(lane_exits_before_shuffle, 1, 32, 0, 0, out.get(), 0); }),
             Catch::Contains("names lane 0 (thread (0,0,0)) that has already exited"));
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(mixed_warp_operations, 1, 32, 0, 0, out.get()); }),
             Catch::Contains("must all call the same warp operation") && Catch::Contains("__syncwarp"));
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(shuffle_outside_mask, 1, 32, 0, 0, out.get()); }),
             Catch::Contains("reads lane 16 with __shfl_down_sync, but mask 0x0000ffff does not name that lane"));
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(full_mask_in_partial_warp, 1, 48, 0, 0, out.get()); }),
             Catch::Contains("names lanes that do not exist") && Catch::Contains("0x0000ffff") &&
                 Catch::Contains("48 threads"));
  FLEXNN_LAUNCH(full_mask_in_partial_warp, 1, 64, 0, 0, out.get());  // whole warps are fine
  const std::vector<int> values = out.download();
  for (int t = 0; t < 64; ++t) REQUIRE(values[static_cast<std::size_t>(t)] == (t ^ 1));
  CHECK_THAT(error_message([] { __syncthreads(); }), Catch::Contains("outside a kernel"));
}

TEST_CASE("an exception inside a kernel reaches the launcher and the next launch works", "[cuda][emulator]") {
  DeviceBuffer<int> out(std::vector<int>(128, 0));
  CHECK_THAT(error_message([&] { FLEXNN_LAUNCH(throws_at, 1, 128, 0, 0, out.get(), 77); }),
             Catch::Contains("thread 77 refuses to continue"));
  std::vector<int> values = out.download();
  CHECK(values == std::vector<int>(128, 1));  // every thread passed the first barrier, none the second
  FLEXNN_LAUNCH(throws_at, 1, 128, 0, 0, out.get(), -1);
  CHECK(out.download() == std::vector<int>(128, 2));
  check_block_sums(777, 96);
}

TEST_CASE("device math intrinsics keep CUDA's semantics", "[cuda][emulator]") {
  CHECK(__fdividef(3.0f, 0x1.8p126f) == 0.0f);  // CUDA: 0 for 2^126 < |y| < 2^128
  CHECK(std::signbit(__fdividef(3.0f, -0x1.8p126f)));
  CHECK(std::isnan(__fdividef(std::numeric_limits<float>::infinity(), 0x1.8p126f)));
  CHECK(__fdividef(1.0f, 4.0f) == 0.25f);
  CHECK(__saturatef(std::numeric_limits<float>::quiet_NaN()) == 0.0f);
  CHECK(__saturatef(-2.0f) == 0.0f);
  CHECK(__saturatef(2.0f) == 1.0f);
  CHECK(__saturatef(0.25f) == 0.25f);
  CHECK(rsqrtf(4.0f) == 0.5f);
  CHECK(std::isinf(rsqrtf(0.0f)));
  CHECK(__umulhi(0xffffffffu, 0xffffffffu) == 0xfffffffeu);
  CHECK(__umulhi(0x80000000u, 6u) == 3u);
  CHECK(__mulhi(-2, 0x40000000) == -1);
  CHECK(__float_as_uint(1.0f) == 0x3f800000u);
  CHECK(__uint_as_float(0xc0000000u) == -2.0f);
  CHECK(__float_as_int(-0.0f) == std::numeric_limits<int>::min());
  CHECK(__int_as_float(0x3f000000) == 0.5f);
  CHECK(__popc(0xf0f0u) == 8);
  CHECK(__clz(0) == 32);
  CHECK(__clz(1) == 31);
  CHECK(__ffs(0) == 0);
  CHECK(__ffs(8) == 4);
  CHECK(__fmaf_rn(0x1.001p0f, 0x1.001p0f, -1.0f) == 0x1.0008p-11f);  // fused: a*a is not rounded first
  CHECK(min(-1, 2u) == 2u);  // mixed signedness compares as unsigned, as in CUDA
  CHECK(max(-1, 2) == 2);
  CHECK(min(1.5f, std::numeric_limits<float>::quiet_NaN()) == 1.5f);
  CHECK(max(2LL, 3LL) == 3LL);
  int wraps = std::numeric_limits<int>::max();
  CHECK(atomicAdd(&wraps, 1) == std::numeric_limits<int>::max());
  CHECK(wraps == std::numeric_limits<int>::min());  // wraps around, as on a GPU
  unsigned decrement = 0;
  CHECK(atomicDec(&decrement, 4u) == 0u);
  CHECK(decrement == 4u);
  CHECK(alignof(float4) == 16);
  CHECK(alignof(float2) == 8);
}

TEST_CASE("a launch of many blocks that never synchronise costs little", "[cuda][emulator]") {
  const unsigned blocks = 4096, threads = 256;
  const int n = static_cast<int>(blocks * threads) - 100;
  std::vector<float> x(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    x[static_cast<std::size_t>(i)] = static_cast<float>(i % 1000);
    y[static_cast<std::size_t>(i)] = static_cast<float>(i % 7);
  }
  DeviceBuffer<float> dx(x), dy(y);
  const auto start = std::chrono::steady_clock::now();
  FLEXNN_LAUNCH(axpy, dim3(blocks), dim3(threads), 0, 0, 0.5f, dx.get(), dy.get(), n);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("4096 x 256 axpy took " << seconds * 1e3 << " ms");
  CHECK(seconds < 2.0);
  const std::vector<float> out = dy.download();
  for (int i = 0; i < n; ++i) {
    REQUIRE(out[static_cast<std::size_t>(i)] == 0.5f * x[static_cast<std::size_t>(i)] + y[static_cast<std::size_t>(i)]);
  }
}
