// Kernel launches in the emulator: the template behind FLEXNN_LAUNCH, which converts the arguments to
// the kernel's parameter types as a call would and keeps them by value (like CUDA's parameter
// buffer), validates the configuration like the driver (block and grid limits, dynamic shared memory
// against the reported limit) and has the scheduler run the kernel body once per CUDA thread.
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include "kernels/cuda/emu/runtime.hpp"
#include "kernels/cuda/emu/scheduler.hpp"

namespace flexnn::emu {

struct LaunchConfig {
  const char* kernel_name;
  const void* kernel;  // for the kernel's cudaFuncSetAttribute limits
  dim3 grid;
  dim3 block;
  std::size_t dynamic_shared_bytes;
  cudaStream_t stream;
};

// Validates the launch (flexnn::Error naming the kernel and the bad value), provides its dynamic
// shared memory and runs it; run_thread(closure) runs the kernel body for the current CUDA thread.
void launch_kernel(const LaunchConfig& config, void (*run_thread)(const void* closure), const void* closure);

template <typename... Params, typename... Args>
void launch(const char* kernel_name, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t dynamic_shared_bytes,
            cudaStream_t stream, Args&&... args) {
  struct Closure {
    void (*kernel)(Params...);
    std::tuple<Params...> arguments;
  };
  const Closure closure{kernel, [](Params... converted) {
                          return std::tuple<Params...>(std::move(converted)...);
                        }(std::forward<Args>(args)...)};
  launch_kernel(
      {kernel_name, reinterpret_cast<const void*>(kernel), grid, block, dynamic_shared_bytes, stream},
      [](const void* erased) {
        const auto& self = *static_cast<const Closure*>(erased);
        std::apply(self.kernel, self.arguments);
      },
      &closure);
}

// The running launch's dynamic shared memory (what FLEXNN_DYNAMIC_SHARED names), 256-byte aligned
// and filled with 0xff bytes at each launch; nullptr when the launch asked for none.
void* dynamic_shared_memory();

// cudaFuncSetAttribute's effect: a kernel's dynamic shared memory limit (up to the opt-in maximum).
cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attribute, int value);

}  // namespace flexnn::emu

template <class T>
cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return ::flexnn::emu::set_function_attribute(reinterpret_cast<const void*>(entry), attr, value);
}
