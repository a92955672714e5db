// The device-memory registry: an ordered map from allocation start to size, under a mutex (host
// threads may allocate concurrently), and the emulated device size.
#include "kernels/cuda/emu/device_memory.hpp"

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string_view>

#include "engine/error.hpp"

namespace flexnn::emu {
namespace {

constexpr std::size_t kAlignment = 256;  // cudaMalloc's guarantee
constexpr std::size_t kDefaultLimit = std::size_t{16} << 30;

std::size_t limit_from_environment() {
  const char* text = std::getenv("FLEXNN_EMU_DEVICE_MEMORY");
  if (text == nullptr) return kDefaultLimit;
  const std::string_view value(text);
  std::size_t bytes = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), bytes);
  FLEXNN_CHECK(error == std::errc() && end == value.data() + value.size() && !value.empty(),
               "FLEXNN_EMU_DEVICE_MEMORY: expected the emulated device's size in bytes, found '{}'", value);
  return bytes;
}

struct Registry {
  std::mutex mutex;
  std::map<std::uintptr_t, std::size_t> allocations;  // start -> requested bytes
  std::size_t used = 0;                               // in whole 256-byte units
  std::size_t limit = limit_from_environment();
};

Registry& registry() {
  static Registry instance;
  return instance;
}

std::size_t rounded(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

void set_device_memory_limit(std::size_t bytes) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.limit = bytes;
}

std::size_t device_memory_limit() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.limit;
}

std::size_t device_memory_used() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.used;
}

void* allocate_device_memory(std::size_t bytes) {
  Registry& r = registry();
  const std::size_t size = rounded(bytes);
  {
    std::lock_guard lock(r.mutex);
    if (size > r.limit || r.used > r.limit - size) return nullptr;
    r.used += size;
  }
  void* pointer = ::operator new (size, std::align_val_t{kAlignment}, std::nothrow);
  std::lock_guard lock(r.mutex);
  if (pointer == nullptr) {
    r.used -= size;
    return nullptr;
  }
  std::memset(pointer, 0xff, size);
  r.allocations.emplace(reinterpret_cast<std::uintptr_t>(pointer), bytes);
  return pointer;
}

bool free_device_memory(void* pointer) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto found = r.allocations.find(reinterpret_cast<std::uintptr_t>(pointer));
  if (found == r.allocations.end()) return false;
  r.used -= rounded(found->second);
  r.allocations.erase(found);
  ::operator delete (pointer, std::align_val_t{kAlignment});
  return true;
}

std::optional<std::string> device_range_problem(const void* pointer, std::size_t bytes) {
  Registry& r = registry();
  const auto start = reinterpret_cast<std::uintptr_t>(pointer);
  std::lock_guard lock(r.mutex);
  auto after = r.allocations.upper_bound(start);
  if (after == r.allocations.begin() || start >= std::prev(after)->first + std::prev(after)->second) {
    return fmt::format("{} is not inside any live cudaMalloc allocation", pointer);
  }
  const auto& [begin, size] = *std::prev(after);
  if (bytes > begin + size - start) {
    return fmt::format("{} + {} bytes runs {} bytes past the end of the {}-byte allocation at {:#x}", pointer, bytes,
                       bytes - (begin + size - start), size, begin);
  }
  return std::nullopt;
}

bool overlaps_device_memory(const void* pointer, std::size_t bytes) {
  Registry& r = registry();
  const auto start = reinterpret_cast<std::uintptr_t>(pointer);
  std::lock_guard lock(r.mutex);
  auto after = r.allocations.lower_bound(start + bytes);
  if (after == r.allocations.begin()) return false;
  const auto& [begin, size] = *std::prev(after);
  return begin + size > start;
}

}  // namespace flexnn::emu
