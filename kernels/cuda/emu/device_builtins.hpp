// CUDA's device-side vocabulary for kernels compiled as C++ against the emulator: the qualifiers,
// __syncthreads and the warp shuffles and votes (barriers of the scheduler), atomics (plain
// read-modify-writes: the emulator's fibers never run at the same time), fences (no-ops) and the math
// intrinsics, mapped to their host equivalents but kept to CUDA's semantics where those differ (signed
// overflow wraps, __fdividef's large-divisor rule, __saturatef of NaN, the min/max overload set).
#pragma once

#include <math.h>  // expf, fmaxf, ... in the global namespace, where CUDA code calls them

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/emu/builtin_variables.hpp"
#include "kernels/cuda/emu/scheduler.hpp"

// Qualifiers. __shared__ variables are static per OS thread: a block runs entirely on the launching
// thread and blocks run one at a time. Dynamic shared memory: FLEXNN_DYNAMIC_SHARED (cuda_compat.cuh).
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ __attribute__((always_inline)) inline
#define __shared__ static thread_local
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

// Block barriers.
inline void __syncthreads() { ::flexnn::emu::block_barrier(0); }
inline int __syncthreads_count(int predicate) { return ::flexnn::emu::block_barrier(predicate); }
inline int __syncthreads_and(int predicate) {
  return ::flexnn::emu::block_barrier(predicate) == static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int predicate) { return ::flexnn::emu::block_barrier(predicate) != 0; }

// Warp votes and synchronisation.
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::flexnn::emu::warp_op(::flexnn::emu::WarpOp::sync, mask, 0, 0, warpSize);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return static_cast<unsigned>(
      ::flexnn::emu::warp_op(::flexnn::emu::WarpOp::ballot, mask, predicate != 0, 0, warpSize));
}
inline int __any_sync(unsigned mask, int predicate) {
  return ::flexnn::emu::warp_op(::flexnn::emu::WarpOp::any, mask, predicate != 0, 0, warpSize) != 0;
}
inline int __all_sync(unsigned mask, int predicate) {
  return ::flexnn::emu::warp_op(::flexnn::emu::WarpOp::all, mask, predicate != 0, 0, warpSize) == mask;
}
inline unsigned __activemask() { return ::flexnn::emu::active_mask(); }

// Warp shuffles, for CUDA's overload set of 4- and 8-byte types.
namespace flexnn::emu {
template <typename T>
T shuffle(WarpOp op, unsigned mask, T value, unsigned argument, int width) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(std::uint64_t));
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_op(op, mask, bits, argument, width);
  T result;
  std::memcpy(&result, &bits, sizeof(T));
  return result;
}
}  // namespace flexnn::emu

#define FLEXNN_EMU_SHUFFLES(T)                                                                                         \
  inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {                                      \
    return ::flexnn::emu::shuffle(::flexnn::emu::WarpOp::shfl, mask, var, static_cast<unsigned>(srcLane), width);      \
  }                                                                                                                    \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {                            \
    return ::flexnn::emu::shuffle(::flexnn::emu::WarpOp::shfl_up, mask, var, delta, width);                            \
  }                                                                                                                    \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {                          \
    return ::flexnn::emu::shuffle(::flexnn::emu::WarpOp::shfl_down, mask, var, delta, width);                          \
  }                                                                                                                    \
  inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {                                 \
    return ::flexnn::emu::shuffle(::flexnn::emu::WarpOp::shfl_xor, mask, var, static_cast<unsigned>(laneMask), width); \
  }
FLEXNN_EMU_SHUFFLES(int)
FLEXNN_EMU_SHUFFLES(unsigned int)
FLEXNN_EMU_SHUFFLES(long)
FLEXNN_EMU_SHUFFLES(unsigned long)
FLEXNN_EMU_SHUFFLES(long long)
FLEXNN_EMU_SHUFFLES(unsigned long long)
FLEXNN_EMU_SHUFFLES(float)
FLEXNN_EMU_SHUFFLES(double)
#undef FLEXNN_EMU_SHUFFLES

// Fences: blocks and threads never run at the same time, so memory is always coherent.
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

// Atomics: each returns the old value, as in CUDA.
namespace flexnn::emu {
template <typename T, typename Update>
T atomic_update(T* address, Update update) {
  const T old = *address;
  *address = update(old);
  return old;
}
// Integer arithmetic wraps around as on a GPU (signed overflow is undefined in C++).
template <typename T>
T wrapping_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
}
template <typename T>
T wrapping_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
}
}  // namespace flexnn::emu

#define FLEXNN_EMU_INTEGER_ATOMICS(T)                                                                           \
  inline T atomicAdd(T* address, T val) {                                                                       \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return ::flexnn::emu::wrapping_add(old, val); }); \
  }                                                                                                             \
  inline T atomicExch(T* address, T val) {                                                                      \
    return ::flexnn::emu::atomic_update(address, [=](T) { return val; });                                       \
  }                                                                                                             \
  inline T atomicMin(T* address, T val) {                                                                       \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return val < old ? val : old; });                 \
  }                                                                                                             \
  inline T atomicMax(T* address, T val) {                                                                       \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return val > old ? val : old; });                 \
  }                                                                                                             \
  inline T atomicCAS(T* address, T compare, T val) {                                                            \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return old == compare ? val : old; });            \
  }                                                                                                             \
  inline T atomicAnd(T* address, T val) {                                                                       \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return old & val; });                             \
  }                                                                                                             \
  inline T atomicOr(T* address, T val) {                                                                        \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return old | val; });                             \
  }                                                                                                             \
  inline T atomicXor(T* address, T val) {                                                                       \
    return ::flexnn::emu::atomic_update(address, [=](T old) { return old ^ val; });                             \
  }
FLEXNN_EMU_INTEGER_ATOMICS(int)
FLEXNN_EMU_INTEGER_ATOMICS(unsigned int)
FLEXNN_EMU_INTEGER_ATOMICS(unsigned long long)
#undef FLEXNN_EMU_INTEGER_ATOMICS

inline int atomicSub(int* address, int val) {
  return ::flexnn::emu::atomic_update(address, [=](int old) { return ::flexnn::emu::wrapping_sub(old, val); });
}
inline unsigned int atomicSub(unsigned int* address, unsigned int val) {
  return ::flexnn::emu::atomic_update(address, [=](unsigned int old) { return old - val; });
}
inline long long atomicMin(long long* address, long long val) {
  return ::flexnn::emu::atomic_update(address, [=](long long old) { return val < old ? val : old; });
}
inline long long atomicMax(long long* address, long long val) {
  return ::flexnn::emu::atomic_update(address, [=](long long old) { return val > old ? val : old; });
}
// atomicInc/atomicDec count modulo val + 1, with CUDA's exact wrap rules.
inline unsigned int atomicInc(unsigned int* address, unsigned int val) {
  return ::flexnn::emu::atomic_update(address, [=](unsigned int old) { return old >= val ? 0u : old + 1; });
}
inline unsigned int atomicDec(unsigned int* address, unsigned int val) {
  return ::flexnn::emu::atomic_update(address, [=](unsigned int old) { return old == 0 || old > val ? val : old - 1; });
}
inline float atomicAdd(float* address, float val) {
  return ::flexnn::emu::atomic_update(address, [=](float old) { return old + val; });
}
inline double atomicAdd(double* address, double val) {
  return ::flexnn::emu::atomic_update(address, [=](double old) { return old + val; });
}
inline float atomicExch(float* address, float val) {
  return ::flexnn::emu::atomic_update(address, [=](float) { return val; });
}

// Fast-math intrinsics: the host's correctly rounded functions (a GPU's are approximations within
// documented error bounds, so results agree to those bounds).
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
// x / y, except that for 2^126 < |y| < 2^128 it delivers zero (NaN for infinite x), as CUDA documents.
inline float __fdividef(float x, float y) {
  const float magnitude = fabsf(y);
  if (magnitude > 0x1p126f && magnitude <= 0x1.fffffep127f) return x * copysignf(0.0f, y);
  return x / y;
}
// Clamps to [0, 1]; NaN becomes 0.
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }

// Bit reinterpretation and integer intrinsics.
inline unsigned int __float_as_uint(float x) { return std::bit_cast<unsigned int>(x); }
inline float __uint_as_float(unsigned int x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>((std::uint64_t{a} * b) >> 32);
}
inline int __mulhi(int a, int b) { return static_cast<int>((std::int64_t{a} * b) >> 32); }
inline int __popc(unsigned int x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned int>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned int>(x)) + 1; }

// Read-only cache loads are plain loads here.
template <typename T>
inline T __ldg(const T* address) {
  return *address;
}

// CUDA's min/max overloads: mixed signed/unsigned arguments compare as unsigned; floating point
// follows fminf/fmaxf (a NaN argument yields the other one).
#define FLEXNN_EMU_MIN_MAX(R, A, B)                                                                                \
  inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); } \
  inline R max(A a, B b) { return static_cast<R>(a) > static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); }
FLEXNN_EMU_MIN_MAX(int, int, int)
FLEXNN_EMU_MIN_MAX(unsigned int, unsigned int, unsigned int)
FLEXNN_EMU_MIN_MAX(unsigned int, int, unsigned int)
FLEXNN_EMU_MIN_MAX(unsigned int, unsigned int, int)
FLEXNN_EMU_MIN_MAX(long, long, long)
FLEXNN_EMU_MIN_MAX(unsigned long, unsigned long, unsigned long)
FLEXNN_EMU_MIN_MAX(unsigned long, long, unsigned long)
FLEXNN_EMU_MIN_MAX(unsigned long, unsigned long, long)
FLEXNN_EMU_MIN_MAX(long long, long long, long long)
FLEXNN_EMU_MIN_MAX(unsigned long long, unsigned long long, unsigned long long)
FLEXNN_EMU_MIN_MAX(unsigned long long, long long, unsigned long long)
FLEXNN_EMU_MIN_MAX(unsigned long long, unsigned long long, long long)
#undef FLEXNN_EMU_MIN_MAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }
inline unsigned int umin(unsigned int a, unsigned int b) { return min(a, b); }
inline unsigned int umax(unsigned int a, unsigned int b) { return max(a, b); }
inline long long llmin(long long a, long long b) { return min(a, b); }
inline long long llmax(long long a, long long b) { return max(a, b); }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return min(a, b); }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return max(a, b); }
