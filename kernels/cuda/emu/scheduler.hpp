// How the emulator executes a launch: its blocks one after another in a fixed order (x fastest, then
// y, then z); inside a block every CUDA thread is a fiber, and the scheduler resumes each runnable
// fiber in turn until it exits or waits at a sync point. The entry points below are what the device
// builtins (__syncthreads, the warp shuffles and votes) call; misuse that hangs or is undefined on a
// GPU (a barrier not every thread reaches, a mask naming an exited lane, a deadlock) is a
// flexnn::Error naming the kernel, the block and the thread.
#pragma once

#include <cstdint>

#include "kernels/cuda/emu/vector_types.hpp"

namespace flexnn::emu {

// One launch as the scheduler sees it: run_thread(closure) runs the kernel body for the CUDA thread
// whose indices the scheduler has just set.
struct GridLaunch {
  const char* kernel_name;
  dim3 grid;
  dim3 block;
  void (*run_thread)(const void* closure);
  const void* closure;
};

// Runs every block of a validated launch on the calling OS thread. An exception thrown by a CUDA
// thread, or an error the scheduler detects, abandons the launch (the emulator stays usable) and is
// rethrown here.
void run_grid(const GridLaunch& launch);

// Whether the caller runs inside a kernel, i.e. on one of the emulator's fibers.
bool in_kernel();

// __syncthreads and its counting forms: waits until every thread of the block arrives and returns
// how many of them passed a non-zero predicate.
int block_barrier(int predicate);

enum class WarpOp : std::uint8_t { sync, shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all };

// A warp-synchronous operation over the lanes named in mask (lanes are 32 consecutive linear thread
// ids): every lane publishes its value and waits until all lanes of the mask have arrived at the
// same operation with the same mask, then reads its result. Shuffles: the value of the source lane
// that argument (srcLane, delta or laneMask) and width select; votes: the ballot of the lanes whose
// value is non-zero; sync: 0.
std::uint64_t warp_op(WarpOp op, unsigned mask, std::uint64_t value, unsigned argument, int width);

// __activemask: the lanes of the caller's warp that exist and have not exited.
unsigned active_mask();

}  // namespace flexnn::emu
