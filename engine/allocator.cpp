// Caching allocator: a multimap from rounded block size to free blocks, behind one mutex.
// A request takes the smallest cached block of at least its size and at most twice it.
#include "engine/allocator.hpp"

#include "engine/error.hpp"

#include <cstdlib>
#include <map>
#include <mutex>

namespace flexnn {
namespace {

constexpr std::size_t kAlignment = 64;

std::size_t rounded(std::size_t bytes) { return (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256; }

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;
  std::size_t cached_bytes = 0;
};

Cache& cache() {
  static Cache* instance = new Cache();  // outlives tensors destroyed during static destruction
  return *instance;
}

}  // namespace

void* cpu_allocate(std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  Cache& c = cache();
  {
    std::lock_guard lock(c.mutex);
    auto it = c.free_blocks.lower_bound(size);
    if (it != c.free_blocks.end() && it->first <= 2 * size) {
      void* ptr = it->second;
      c.cached_bytes -= it->first;
      c.free_blocks.erase(it);
      return ptr;
    }
  }
  void* ptr = std::aligned_alloc(kAlignment, size);
  if (ptr == nullptr) {
    cpu_empty_cache();
    ptr = std::aligned_alloc(kAlignment, size);
  }
  FLEXNN_CHECK(ptr != nullptr, "out of memory: could not allocate {} bytes on the CPU", bytes);
  return ptr;
}

void cpu_free(void* ptr, std::size_t bytes) {
  if (ptr == nullptr) return;
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  c.free_blocks.emplace(rounded(bytes), ptr);
  c.cached_bytes += rounded(bytes);
}

void cpu_empty_cache() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  for (auto& [size, ptr] : c.free_blocks) std::free(ptr);
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

std::size_t cpu_cached_bytes() {
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.cached_bytes;
}

}  // namespace flexnn
