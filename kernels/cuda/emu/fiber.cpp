// Fiber stacks (mmap with a guard page) and the context switch: x86-64 assembly saving the
// callee-saved registers, the stack pointer, MXCSR and the x87 control word; ucontext elsewhere.
#include "kernels/cuda/emu/fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "engine/error.hpp"

#ifdef FLEXNN_EMU_FIBER_X86_64
// flexnn_emu_switch(save, load): pushes the callee-saved registers and the floating-point control
// state on the current stack, stores the stack pointer in *save, switches to the stack `load` and
// pops the same from it. flexnn_emu_fiber_start is where a fresh fiber's first switch "returns"
// to: it calls entry(argument) from r12/r13 on a 16-byte-aligned stack, and marks the end of the
// call chain for unwinders (.cfi_undefined rip).
asm(R"(
  .text
  .globl flexnn_emu_switch
  .hidden flexnn_emu_switch
  .type flexnn_emu_switch, @function
  .p2align 4
flexnn_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size flexnn_emu_switch, .-flexnn_emu_switch

  .globl flexnn_emu_fiber_start
  .hidden flexnn_emu_fiber_start
  .type flexnn_emu_fiber_start, @function
  .p2align 4
flexnn_emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %r13, %rdi
  callq *%r12
  ud2
  .cfi_endproc
  .size flexnn_emu_fiber_start, .-flexnn_emu_fiber_start
)");

extern "C" void flexnn_emu_switch(void** save, void* load);
extern "C" void flexnn_emu_fiber_start();
#endif

namespace flexnn::emu {

Fiber::Fiber(Entry entry, void* argument) : entry_(entry), argument_(argument) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  mapping_bytes_ = page + kStackBytes;
  void* mapping = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping == MAP_FAILED) {
    fail("CUDA emulator: could not map a {}-byte fiber stack: {}", mapping_bytes_, std::strerror(errno));
  }
  mapping_ = static_cast<std::byte*>(mapping);
  if (mprotect(mapping_, page, PROT_NONE) != 0) {
    const int error = errno;
    munmap(mapping_, mapping_bytes_);
    fail("CUDA emulator: could not protect a fiber stack's guard page: {}", std::strerror(error));
  }
  restart();
}

Fiber::~Fiber() { munmap(mapping_, mapping_bytes_); }

#ifdef FLEXNN_EMU_FIBER_X86_64

void switch_context(Context& from, Context& to) { flexnn_emu_switch(&from.stack_pointer, to.stack_pointer); }

void Fiber::restart() {
  // The frame flexnn_emu_switch pops: FP control state, r15, r14, r13, r12, rbx, rbp, return
  // address. The return-address slot sits at 8 mod 16 so the entry sees the ABI's alignment.
  auto* top = reinterpret_cast<std::uint64_t*>(mapping_ + mapping_bytes_);
  std::uint64_t* frame = top - 3 - 7;
  std::uint32_t mxcsr = 0;
  std::uint16_t x87_control = 0;
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(x87_control));
  frame[0] = mxcsr | (std::uint64_t{x87_control} << 32);
  frame[1] = 0;                                           // r15
  frame[2] = 0;                                           // r14
  frame[3] = reinterpret_cast<std::uint64_t>(argument_);  // r13
  frame[4] = reinterpret_cast<std::uint64_t>(entry_);     // r12
  frame[5] = 0;                                           // rbx
  frame[6] = 0;                                           // rbp
  frame[7] = reinterpret_cast<std::uint64_t>(&flexnn_emu_fiber_start);
  context_.stack_pointer = frame;
}

#else

void switch_context(Context& from, Context& to) { swapcontext(&from.ucontext, &to.ucontext); }

void Fiber::start(unsigned high, unsigned low) {
  auto* fiber = reinterpret_cast<Fiber*>((std::uintptr_t{high} << 32) | low);
  fiber->entry_(fiber->argument_);
}

void Fiber::restart() {
  getcontext(&context_.ucontext);
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  context_.ucontext.uc_stack.ss_sp = mapping_ + page;
  context_.ucontext.uc_stack.ss_size = kStackBytes;
  context_.ucontext.uc_link = nullptr;
  const auto self = reinterpret_cast<std::uintptr_t>(this);
  makecontext(&context_.ucontext, reinterpret_cast<void (*)()>(&Fiber::start), 2, static_cast<unsigned>(self >> 32),
              static_cast<unsigned>(self));
}

#endif

}  // namespace flexnn::emu
