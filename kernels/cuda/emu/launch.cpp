// Launch validation with the driver's limits and messages naming the kernel, per-kernel dynamic
// shared memory limits (cudaFuncSetAttribute), and the per-launch dynamic shared memory buffer.
#include "kernels/cuda/emu/launch.hpp"

#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>

#include "engine/error.hpp"

namespace flexnn::emu {
namespace {

constexpr std::size_t kSharedAlignment = 256;

struct SharedBuffer {
  struct Delete {
    void operator()(std::byte* p) const { ::operator delete (p, std::align_val_t{kSharedAlignment}); }
  };
  std::unique_ptr<std::byte, Delete> storage;
  std::size_t capacity = 0;
  std::byte* current = nullptr;  // the running launch's buffer, nullptr when it asked for none
};

SharedBuffer& shared_buffer() {
  static thread_local SharedBuffer instance;
  return instance;
}

struct FunctionLimits {
  std::mutex mutex;
  std::unordered_map<const void*, std::size_t> max_dynamic_shared;
};

FunctionLimits& function_limits() {
  static FunctionLimits instance;
  return instance;
}

std::size_t dynamic_shared_limit(const void* kernel) {
  FunctionLimits& limits = function_limits();
  std::lock_guard lock(limits.mutex);
  const auto found = limits.max_dynamic_shared.find(kernel);
  return found == limits.max_dynamic_shared.end() ? kSharedMemoryPerBlock : found->second;
}

void validate(const LaunchConfig& c) {
  const char* name = c.kernel_name;
  FLEXNN_CHECK(!in_kernel(),
               "CUDA emulator: kernel '{}' launched from inside a kernel: dynamic parallelism is not "
               "emulated",
               name);
  const dim3 g = c.grid, b = c.block;
  FLEXNN_CHECK(g.x != 0 && g.y != 0 && g.z != 0 && b.x != 0 && b.y != 0 && b.z != 0,
               "CUDA emulator: kernel '{}' launched with gridDim ({},{},{}) and blockDim ({},{},{}); every "
               "dimension must be at least 1",
               name, g.x, g.y, g.z, b.x, b.y, b.z);
  FLEXNN_CHECK(g.x <= 2147483647u && g.y <= 65535u && g.z <= 65535u,
               "CUDA emulator: kernel '{}' launched with gridDim ({},{},{}); the limits are (2147483647,65535,65535)",
               name, g.x, g.y, g.z);
  FLEXNN_CHECK(b.x <= 1024u && b.y <= 1024u && b.z <= 64u,
               "CUDA emulator: kernel '{}' launched with blockDim ({},{},{}); the limits are (1024,1024,64)", name, b.x,
               b.y, b.z);
  const unsigned threads = b.x * b.y * b.z;
  FLEXNN_CHECK(threads <= 1024u,
               "CUDA emulator: kernel '{}' launched with blockDim ({},{},{}) = {} threads per block; the limit is 1024",
               name, b.x, b.y, b.z, threads);
  const std::size_t limit = dynamic_shared_limit(c.kernel);
  FLEXNN_CHECK(c.dynamic_shared_bytes <= limit,
               "CUDA emulator: kernel '{}' launched with {} bytes of dynamic shared memory; its limit is {} bytes "
               "(cudaFuncSetAttribute with cudaFuncAttributeMaxDynamicSharedMemorySize raises it up to {})",
               name, c.dynamic_shared_bytes, limit, kSharedMemoryPerBlockOptin);
  FLEXNN_CHECK(is_live_stream(c.stream), "CUDA emulator: kernel '{}' launched on stream {}, which is not a live stream",
               name, static_cast<const void*>(c.stream));
}

}  // namespace

void launch_kernel(const LaunchConfig& config, void (*run_thread)(const void* closure), const void* closure) {
  validate(config);
  SharedBuffer& shared = shared_buffer();
  shared.current = nullptr;
  if (config.dynamic_shared_bytes > 0) {
    if (config.dynamic_shared_bytes > shared.capacity) {
      shared.storage.reset(
          static_cast<std::byte*>(::operator new (config.dynamic_shared_bytes, std::align_val_t{kSharedAlignment})));
      shared.capacity = config.dynamic_shared_bytes;
    }
    shared.current = shared.storage.get();
    std::memset(shared.current, 0xff, config.dynamic_shared_bytes);
  }
  run_grid(GridLaunch{config.kernel_name, config.grid, config.block, run_thread, closure});
}

void* dynamic_shared_memory() { return shared_buffer().current; }

cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  switch (attribute) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
      if (value < 0 || static_cast<std::size_t>(value) > kSharedMemoryPerBlockOptin) {
        return record_error(cudaErrorInvalidValue,
                            fmt::format("cudaFuncSetAttribute: {} bytes of dynamic shared memory; the opt-in limit "
                                        "is {}",
                                        value, kSharedMemoryPerBlockOptin));
      }
      {
        FunctionLimits& limits = function_limits();
        std::lock_guard lock(limits.mutex);
        limits.max_dynamic_shared[kernel] = static_cast<std::size_t>(value);
      }
      return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:
      if (value < -1 || value > 100) {
        return record_error(cudaErrorInvalidValue,
                            fmt::format("cudaFuncSetAttribute: shared memory carveout {} is not -1 or 0..100", value));
      }
      return cudaSuccess;
  }
  return record_error(cudaErrorInvalidValue,
                      fmt::format("cudaFuncSetAttribute: attribute {} is not emulated", static_cast<int>(attribute)));
}

}  // namespace flexnn::emu
