// Caching allocators: per device type, a multimap from rounded block size to free blocks, behind
// one mutex. A request takes the smallest cached block of at least its size and at most twice it;
// when the system (or the GPU) is out of memory, the cache is emptied and the request retried.
#include "engine/allocator.hpp"

#include "engine/error.hpp"
#include "kernels/cuda/memory.hpp"

#include <cstdlib>
#include <map>
#include <mutex>

namespace flexnn {
namespace {

std::size_t rounded(std::size_t bytes) { return (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256; }

void* system_allocate(DeviceType type, std::size_t size) {
  if (type == DeviceType::CUDA) return cuda::device_malloc(size);
  return std::aligned_alloc(64, size);
}

void system_free(DeviceType type, void* ptr) {
  if (type == DeviceType::CUDA) {
    cuda::device_free(ptr);
  } else {
    std::free(ptr);
  }
}

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;
  std::size_t cached_bytes = 0;
  std::size_t allocated_bytes = 0, peak_allocated_bytes = 0;

  MemoryBlock hand_out(void* ptr, std::size_t size) {  // with the mutex held
    allocated_bytes += size;
    peak_allocated_bytes = std::max(peak_allocated_bytes, allocated_bytes);
    return {ptr, size};
  }
};

Cache& cache(DeviceType type) {
  // Outlive tensors destroyed during static destruction.
  static Cache* caches = new Cache[2];
  return caches[type == DeviceType::CUDA ? 1 : 0];
}

std::string out_of_memory(Device device, std::size_t bytes) {
  if (device.type != DeviceType::CUDA) return fmt::format("out of memory: could not allocate {} bytes on the CPU", bytes);
  std::size_t free_bytes = 0, total_bytes = 0;
  cuda::memory_info(free_bytes, total_bytes);
  return fmt::format("CUDA out of memory: could not allocate {} bytes on {} ({} bytes free of {})", bytes,
                     device.str(), free_bytes, total_bytes);
}

}  // namespace

MemoryBlock device_allocate(Device device, std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  Cache& c = cache(device.type);
  {
    std::lock_guard lock(c.mutex);
    auto it = c.free_blocks.lower_bound(size);
    if (it != c.free_blocks.end() && it->first <= 2 * size) {
      const MemoryBlock block{it->second, it->first};
      c.cached_bytes -= it->first;
      c.free_blocks.erase(it);
      return c.hand_out(block.ptr, block.size);
    }
  }
  void* ptr = system_allocate(device.type, size);
  if (ptr == nullptr) {
    empty_cache(device.type);
    ptr = system_allocate(device.type, size);
  }
  if (ptr == nullptr) throw Error(out_of_memory(device, bytes));
  std::lock_guard lock(c.mutex);
  return c.hand_out(ptr, size);
}

void device_release(Device device, MemoryBlock block) {
  if (block.ptr == nullptr) return;
  Cache& c = cache(device.type);
  std::lock_guard lock(c.mutex);
  c.free_blocks.emplace(block.size, block.ptr);
  c.cached_bytes += block.size;
  c.allocated_bytes -= block.size;
}

void empty_cache(DeviceType type) {
  Cache& c = cache(type);
  std::lock_guard lock(c.mutex);
  for (auto& [size, ptr] : c.free_blocks) system_free(type, ptr);
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

std::size_t cached_bytes(DeviceType type) {
  Cache& c = cache(type);
  std::lock_guard lock(c.mutex);
  return c.cached_bytes;
}

std::size_t allocated_bytes(DeviceType type) {
  Cache& c = cache(type);
  std::lock_guard lock(c.mutex);
  return c.allocated_bytes;
}

std::size_t peak_allocated_bytes(DeviceType type) {
  Cache& c = cache(type);
  std::lock_guard lock(c.mutex);
  return c.peak_allocated_bytes;
}

void reset_peak_allocated_bytes(DeviceType type) {
  Cache& c = cache(type);
  std::lock_guard lock(c.mutex);
  c.peak_allocated_bytes = c.allocated_bytes;
}

}  // namespace flexnn
