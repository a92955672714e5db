// The caching allocators, one per device type: freed blocks are kept by size and handed out again,
// so a training loop that allocates the same shapes every step stops touching the system (or
// CUDA) allocator after its first step. CPU blocks are 64-byte aligned, CUDA blocks 256-byte.
// On the device, reuse is safe without synchronisation because all work runs on one stream.
#pragma once

#include "engine/device.hpp"

#include <cstddef>

namespace flexnn {

// A block of device memory: where it starts and how many bytes it really holds (at least the
// request; a cached block may be up to twice it).
struct MemoryBlock {
  void* ptr = nullptr;
  std::size_t size = 0;
};

// A block of at least `bytes` on the device. Throws flexnn::Error naming the requested size when
// the device is out of memory even after the cache has been returned to it.
MemoryBlock device_allocate(Device device, std::size_t bytes);
// Returns a block from device_allocate to the cache.
void device_release(Device device, MemoryBlock block);
// Returns every cached block of the device type to the system.
void empty_cache(DeviceType type);
// Bytes held in the device type's cache, not in use.
std::size_t cached_bytes(DeviceType type);
// Bytes in blocks handed out and not yet released, and their maximum since the last reset (as
// torch.cuda.memory_allocated / max_memory_allocated, counting whole blocks).
std::size_t allocated_bytes(DeviceType type);
std::size_t peak_allocated_bytes(DeviceType type);
void reset_peak_allocated_bytes(DeviceType type);

}  // namespace flexnn
