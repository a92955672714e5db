// The CPU caching allocator: freed blocks are kept by size and handed out again, so a training
// loop that allocates the same shapes every step stops touching the system allocator (and the
// page faults of fresh large blocks) after its first step. Blocks are 64-byte aligned.
#pragma once

#include <cstddef>

namespace flexnn {

void* cpu_allocate(std::size_t bytes);
void cpu_free(void* ptr, std::size_t bytes);
// Returns every cached block to the system.
void cpu_empty_cache();
// Bytes held in the cache, not in use.
std::size_t cpu_cached_bytes();

}  // namespace flexnn
