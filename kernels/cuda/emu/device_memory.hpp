// The emulated device's memory: 256-byte-aligned host allocations standing for device memory, kept in
// a registry so the runtime and cuBLAS can check that a pointer claimed to be a device pointer lies
// inside a live allocation (and that a claimed host pointer does not), bounded by an emulated device
// size so the backend's out-of-memory path can be tested.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace flexnn::emu {

// The emulated device size: FLEXNN_EMU_DEVICE_MEMORY (bytes) when set, else 16 GiB. Setting it below
// what is allocated makes further allocations fail until enough is freed.
void set_device_memory_limit(std::size_t bytes);
std::size_t device_memory_limit();
std::size_t device_memory_used();

// A new allocation filled with 0xff bytes (NaN as float, -1 as int: reads of memory nothing wrote
// stand out), or nullptr when it would exceed the limit.
void* allocate_device_memory(std::size_t bytes);
// False when pointer is not the start of a live allocation.
bool free_device_memory(void* pointer);

// Why [pointer, pointer + bytes) is not inside one live allocation, or nullopt when it is.
std::optional<std::string> device_range_problem(const void* pointer, std::size_t bytes);
// Whether [pointer, pointer + bytes) overlaps any live allocation.
bool overlaps_device_memory(const void* pointer, std::size_t bytes);

}  // namespace flexnn::emu
