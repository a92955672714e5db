// The CPU thread pool and parallel_for. Work is cut into chunks whose boundaries depend only on
// the range and the grain, never on the thread count, so every kernel that writes disjoint
// outputs per chunk gives bit-identical results with 1 or N threads.
#pragma once

#include <cstdint>
#include <functional>

namespace flexnn::cpu {

// Threads used by parallel_for (the caller included). Default: FLEXNN_NUM_THREADS, else the
// number of hardware threads.
int num_threads();
void set_num_threads(int n);

// Calls body(chunk_begin, chunk_end) for the chunks [begin + k*grain, min(end, begin + (k+1)*grain)).
// Chunks run concurrently on the pool; a call made from inside a chunk runs serially. The first
// exception thrown by a chunk is rethrown in the caller after every chunk has finished.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body);

}  // namespace flexnn::cpu
