// The one header every source of the CUDA backend includes (first): the real CUDA runtime and cuBLAS
// under nvcc (and in plain host code of a native build), the CPU emulation of CUDA (kernels/cuda/emu)
// when the backend is compiled as C++ (FLEXNN_CUDA_EMULATED); plus the macros that read the same in
// both worlds:
//   FLEXNN_LAUNCH(kernel, grid, block, shared_bytes, stream, args...)   launch, errors -> flexnn::Error
//   FLEXNN_DYNAMIC_SHARED(type, name);   type* name = the launch's dynamic shared memory
//   FLEXNN_CUDA_CHECK(call)   FLEXNN_CUBLAS_CHECK(call)   a failed status -> flexnn::Error
// A template kernel with several arguments goes in parentheses: FLEXNN_LAUNCH((k<float, 4>), ...).
#pragma once

#if defined(__CUDACC__) && !defined(FMT_USE_CONSTEXPR)
// fmt turns constexpr off for nvcc, which breaks its consteval format strings in C++20: turn it on.
#define FMT_USE_CONSTEXPR 1
#endif

#include <string>

#include "engine/error.hpp"

#if defined(__CUDACC__) || !defined(FLEXNN_CUDA_EMULATED)

#include <cublas_v2.h>
#include <cuda_runtime.h>

#define FLEXNN_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)              \
  do {                                                                             \
    kernel<<<grid, block, shared_bytes, stream>>>(__VA_ARGS__);                    \
    ::flexnn::cuda::check_launch(cudaGetLastError(), #kernel, __FILE__, __LINE__); \
  } while (false)

#define FLEXNN_DYNAMIC_SHARED(type, name)                                 \
  extern __shared__ __align__(16) unsigned char flexnn_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(flexnn_dynamic_shared_)

namespace flexnn::cuda {
inline std::string error_detail() { return {}; }

inline void check_launch(cudaError_t status, const char* kernel, const char* file, int line) {
  if (status != cudaSuccess) {
    fail("launch of kernel '{}' failed at {}:{}: {} ({})", kernel, file, line, cudaGetErrorName(status),
         cudaGetErrorString(status));
  }
}
}  // namespace flexnn::cuda

#else

#include "kernels/cuda/emu/emulator.hpp"

// Validates and runs the launch; configuration errors and errors inside the kernel (deadlocks,
// exceptions) are thrown as flexnn::Error naming the kernel.
#define FLEXNN_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::flexnn::emu::launch(#kernel, kernel, grid, block, shared_bytes, stream __VA_OPT__(, ) __VA_ARGS__)

#define FLEXNN_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::flexnn::emu::dynamic_shared_memory())

namespace flexnn::cuda {
// The emulator says why a call failed; the message carries it.
inline std::string error_detail() {
  const std::string& detail = ::flexnn::emu::last_error_detail();
  return detail.empty() ? std::string() : " [" + detail + "]";
}
}  // namespace flexnn::cuda

#endif

namespace flexnn::cuda {

inline void check_status(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    fail("{} failed at {}:{}: {} ({}){}", call, file, line, cudaGetErrorName(status), cudaGetErrorString(status),
         error_detail());
  }
}

inline void check_status(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail("{} failed at {}:{}: {} ({}){}", call, file, line, cublasGetStatusName(status), cublasGetStatusString(status),
         error_detail());
  }
}

}  // namespace flexnn::cuda

#define FLEXNN_CUDA_CHECK(call) ::flexnn::cuda::check_status((call), #call, __FILE__, __LINE__)
#define FLEXNN_CUBLAS_CHECK(call) ::flexnn::cuda::check_status((call), #call, __FILE__, __LINE__)
