// A fiber: a stack of its own plus a saved register context, so that one CUDA thread of the emulator
// can stop at a barrier (__syncthreads, a warp shuffle) and be resumed later on the same OS thread.
// On x86-64 the switch is a few hand-written instructions (no system call, unlike swapcontext, which
// saves the signal mask on every switch); other architectures fall back to ucontext.
#pragma once

#include <cstddef>

#if defined(__x86_64__) && !defined(FLEXNN_EMU_UCONTEXT)
#define FLEXNN_EMU_FIBER_X86_64 1
#else
#include <ucontext.h>
#endif

namespace flexnn::emu {

// Where a suspended fiber, or the OS thread that runs fibers, continues.
struct Context {
#ifdef FLEXNN_EMU_FIBER_X86_64
  void* stack_pointer = nullptr;
#else
  ucontext_t ucontext{};
#endif
};

// Saves the running context in `from` and continues `to`; returns when something switches back to
// `from`. Switches are symmetric: any fiber may switch to any other, or back to the OS thread.
void switch_context(Context& from, Context& to);

class Fiber {
 public:
  using Entry = void (*)(void* argument);

  // Maps the stack (with a guard page below it, so an overflow faults instead of corrupting a
  // neighbour) and prepares the fiber to start in entry(argument), which must never return.
  Fiber(Entry entry, void* argument);
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Switch here to run the fiber.
  Context& context() { return context_; }
  // Forgets where the fiber stopped (its frames are dropped, not unwound): the next switch to it
  // starts entry(argument) afresh. Used to abandon a failed launch; never on the running fiber.
  void restart();

  static constexpr std::size_t kStackBytes = 256 * 1024;

 private:
#ifndef FLEXNN_EMU_FIBER_X86_64
  static void start(unsigned high, unsigned low);
#endif
  Entry entry_;
  void* argument_;
  std::byte* mapping_ = nullptr;  // guard page + stack
  std::size_t mapping_bytes_ = 0;
  Context context_;
};

}  // namespace flexnn::emu
