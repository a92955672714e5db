// The emulator's scheduler: one Executor per OS thread owns a pool of fibers (created on demand,
// reused across blocks and launches) and runs a launch block by block. A fiber is a worker: it starts
// the block's next unstarted CUDA thread, and when that thread exits it starts the next one, so a
// kernel that never synchronises runs a whole block on one fiber with two context switches. A thread
// that waits at a barrier keeps its fiber and switches straight to the next one to run: a runnable
// thread (in the order their barriers opened), else an idle fiber for the next unstarted thread, else
// the launching OS thread, which then finds the block finished or deadlocked.
#include "kernels/cuda/emu/scheduler.hpp"

#include <algorithm>
#include <bit>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.hpp"
#include "kernels/cuda/emu/builtin_variables.hpp"
#include "kernels/cuda/emu/fiber.hpp"

namespace flexnn::emu {
namespace {

constexpr unsigned kWarpLanes = 32;

enum class ThreadState : std::uint8_t { running, runnable, at_barrier, at_warp_op, exited };

struct ThreadSlot {
  Fiber* fiber = nullptr;
  uint3 index{};
  ThreadState state = ThreadState::running;
  // The warp operation the thread waits at (or last took part in).
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  unsigned argument = 0;
  int width = 0;
  std::uint64_t value = 0;
  std::uint64_t result = 0;  // of the warp operation, or the barrier's predicate count
};

// A warp operation collecting its lanes: the mask and operation of its first arrival. A warp's
// groups have disjoint masks, so finding an arrival's group takes a look at few (usually one).
struct WarpGroup {
  unsigned mask;
  WarpOp op;
};

struct Warp {
  unsigned present = 0;  // lanes that exist (the block's last warp may be partial)
  unsigned waiting = 0;  // lanes waiting at a warp operation
  unsigned exited = 0;
  unsigned groups = 0;  // collecting groups, in group[0, groups)
  WarpGroup group[kWarpLanes];
};

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::sync: return "__syncwarp";
    case WarpOp::shfl: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
  }
  return "warp operation";
}

bool is_shuffle(WarpOp op) {
  return op == WarpOp::shfl || op == WarpOp::shfl_up || op == WarpOp::shfl_down || op == WarpOp::shfl_xor;
}

// The lane a shuffle reads, with PTX's rules for width-sized segments: out-of-segment sources of
// up/down/xor read the caller's own value; shfl wraps srcLane into the caller's segment.
unsigned source_lane(WarpOp op, unsigned lane, unsigned argument, int width) {
  const auto w = static_cast<unsigned>(width);
  const unsigned segment = lane & ~(w - 1);
  const unsigned in_segment = lane & (w - 1);
  switch (op) {
    case WarpOp::shfl: return segment | (argument & (w - 1));
    case WarpOp::shfl_up: return argument <= in_segment ? lane - argument : lane;
    case WarpOp::shfl_down: return argument < w - in_segment ? lane + argument : lane;
    case WarpOp::shfl_xor: return (lane ^ argument) <= (segment | (w - 1)) ? lane ^ argument : lane;
    default: return lane;
  }
}

std::string text(uint3 index) { return fmt::format("({},{},{})", index.x, index.y, index.z); }

class Executor {
 public:
  void run(const GridLaunch& launch);
  bool active() const { return launch_ != nullptr; }
  int barrier(int predicate);
  std::uint64_t warp_op(WarpOp op, unsigned mask, std::uint64_t value, unsigned argument, int width);
  unsigned active_mask() const;

 private:
  static void worker_entry(void* executor) { static_cast<Executor*>(executor)->work(); }
  [[noreturn]] void work();
  void run_block();
  void exit_thread(unsigned thread);
  void make_runnable(unsigned thread);
  void complete_warp_op(unsigned base, unsigned mask);
  // Switches from the waiting current thread to the next context; returns when it is resumed.
  void wait() {
    Fiber* self = running_;
    switch_context(self->context(), next_context());
  }
  Context& next_context();
  Fiber* idle_fiber();
  void abandon();
  [[noreturn]] void deadlock() const;
  std::string thread_text(unsigned thread) const { return "thread " + text(slots_[thread].index); }
  // Throws flexnn::Error prefixed with the kernel and the block.
  template <typename... Args>
  [[noreturn]] void fail_in_block(fmt::format_string<Args...> format, Args&&... args) const {
    fail("CUDA emulator: kernel '{}', block {}: {}", launch_->kernel_name, text(blockIdx),
         fmt::format(format, std::forward<Args>(args)...));
  }

  std::vector<std::unique_ptr<Fiber>> fibers_;
  std::vector<Fiber*> idle_;
  Fiber* running_ = nullptr;
  Context launcher_;  // the launching OS thread's context while fibers run

  const GridLaunch* launch_ = nullptr;
  unsigned threads_ = 0;  // per block
  std::vector<ThreadSlot> slots_;
  std::vector<Warp> warps_;
  std::vector<unsigned> ring_;  // the runnable threads, in order; each at most once
  unsigned ring_head_ = 0, ring_size_ = 0;
  unsigned next_start_ = 0;
  uint3 next_index_{};
  unsigned current_ = 0;
  unsigned exited_ = 0, first_exited_ = 0;
  unsigned barrier_arrived_ = 0, barrier_count_ = 0;
  std::exception_ptr failure_;
};

Executor& executor() {
  static thread_local Executor instance;
  return instance;
}

void Executor::run(const GridLaunch& launch) {
  launch_ = &launch;
  threads_ = launch.block.x * launch.block.y * launch.block.z;
  slots_.resize(threads_);
  ring_.resize(threads_);
  warps_.assign((threads_ + kWarpLanes - 1) / kWarpLanes, Warp{});
  for (unsigned w = 0; w < warps_.size(); ++w) {
    const unsigned lanes = std::min(kWarpLanes, threads_ - w * kWarpLanes);
    warps_[w].present = lanes == kWarpLanes ? ~0u : (1u << lanes) - 1;
  }
  blockDim = launch.block;
  gridDim = launch.grid;
  try {
    for (unsigned z = 0; z < launch.grid.z; ++z) {
      for (unsigned y = 0; y < launch.grid.y; ++y) {
        for (unsigned x = 0; x < launch.grid.x; ++x) {
          blockIdx = uint3{x, y, z};
          run_block();
        }
      }
    }
  } catch (...) {
    abandon();
    launch_ = nullptr;
    throw;
  }
  launch_ = nullptr;
}

void Executor::run_block() {
  next_start_ = 0;
  next_index_ = uint3{0, 0, 0};
  exited_ = 0;
  barrier_arrived_ = barrier_count_ = 0;
  ring_head_ = ring_size_ = 0;
  for (Warp& warp : warps_) warp.waiting = warp.exited = warp.groups = 0;
  for (;;) {
    Context& next = next_context();
    if (&next == &launcher_) {
      if (exited_ == threads_) return;
      deadlock();
    }
    switch_context(launcher_, next);
    if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
  }
}

Context& Executor::next_context() {
  if (ring_size_ > 0) {
    current_ = ring_[ring_head_];
    ring_head_ = ring_head_ + 1 == threads_ ? 0 : ring_head_ + 1;
    --ring_size_;
    ThreadSlot& slot = slots_[current_];
    slot.state = ThreadState::running;
    threadIdx = slot.index;
    running_ = slot.fiber;
    return running_->context();
  }
  if (next_start_ < threads_) {
    running_ = idle_fiber();
    return running_->context();
  }
  return launcher_;
}

void Executor::work() {
  Fiber* const self = running_;
  for (;;) {
    while (next_start_ < threads_ && !failure_) {
      const unsigned thread = next_start_++;
      ThreadSlot& slot = slots_[thread];
      slot.fiber = self;
      slot.index = next_index_;
      slot.state = ThreadState::running;
      if (++next_index_.x == launch_->block.x) {
        next_index_.x = 0;
        if (++next_index_.y == launch_->block.y) {
          next_index_.y = 0;
          ++next_index_.z;
        }
      }
      current_ = thread;
      threadIdx = slot.index;
      try {
        launch_->run_thread(launch_->closure);
        exit_thread(thread);
      } catch (...) {
        failure_ = std::current_exception();
      }
    }
    idle_.push_back(self);
    switch_context(self->context(), failure_ ? launcher_ : next_context());
  }
}

Fiber* Executor::idle_fiber() {
  if (idle_.empty()) {
    fibers_.push_back(std::make_unique<Fiber>(&Executor::worker_entry, this));
    return fibers_.back().get();
  }
  Fiber* fiber = idle_.back();
  idle_.pop_back();
  return fiber;
}

// Drops every fiber's frames (threads stopped at barriers are never resumed) and parks them all.
void Executor::abandon() {
  idle_.clear();
  for (auto& fiber : fibers_) {
    fiber->restart();
    idle_.push_back(fiber.get());
  }
  failure_ = nullptr;
}

void Executor::make_runnable(unsigned thread) {
  slots_[thread].state = ThreadState::runnable;
  unsigned tail = ring_head_ + ring_size_;
  if (tail >= threads_) tail -= threads_;
  ring_[tail] = thread;
  ++ring_size_;
}

void Executor::exit_thread(unsigned thread) {
  slots_[thread].state = ThreadState::exited;
  if (exited_++ == 0) first_exited_ = thread;
  Warp& warp = warps_[thread / kWarpLanes];
  const unsigned bit = 1u << (thread % kWarpLanes);
  warp.exited |= bit;
  if (barrier_arrived_ > 0) {
    unsigned waiter = 0;
    while (slots_[waiter].state != ThreadState::at_barrier) ++waiter;
    fail_in_block(
        "deadlock at __syncthreads(): {} exited while {} thread(s) of the block wait at the barrier (e.g. {}), "
        "so it can never open; every thread of a block must reach each __syncthreads() (undefined behaviour on "
        "a GPU)",
        thread_text(thread), barrier_arrived_, thread_text(waiter));
  }
  for (unsigned g = 0; g < warp.groups; ++g) {
    const WarpGroup& group = warp.group[g];
    if (group.mask & bit) {
      const unsigned lane = static_cast<unsigned>(std::countr_zero(group.mask & warp.waiting));
      fail_in_block("deadlock: {} exited while lane {} ({}) waits for it at {} with mask {:#010x}", thread_text(thread),
                    lane, thread_text(thread - thread % kWarpLanes + lane), op_name(group.op), group.mask);
    }
  }
}

int Executor::barrier(int predicate) {
  const unsigned self = current_;
  if (exited_ > 0) {
    fail_in_block(
        "deadlock at __syncthreads(): {} reached the barrier after {} thread(s) of the block had exited (first: "
        "{}), so it can never open; every thread of a block must reach each __syncthreads() (undefined "
        "behaviour on a GPU)",
        thread_text(self), exited_, thread_text(first_exited_));
  }
  barrier_count_ += predicate != 0;
  if (++barrier_arrived_ < threads_) {
    slots_[self].state = ThreadState::at_barrier;
    wait();
    return static_cast<int>(slots_[self].result);
  }
  const unsigned count = barrier_count_;
  barrier_arrived_ = barrier_count_ = 0;
  for (unsigned thread = 0; thread < threads_; ++thread) {
    if (thread != self) {
      slots_[thread].result = count;
      make_runnable(thread);
    }
  }
  return static_cast<int>(count);
}

std::uint64_t Executor::warp_op(WarpOp op, unsigned mask, std::uint64_t value, unsigned argument, int width) {
  const unsigned self = current_;
  const unsigned lane = self % kWarpLanes, base = self - lane, bit = 1u << lane;
  Warp& warp = warps_[self / kWarpLanes];
  if (!(mask & bit)) {
    fail_in_block("{} (lane {}) called {} with mask {:#010x}, which does not name its own lane", thread_text(self),
                  lane, op_name(op), mask);
  }
  if (mask & ~warp.present) {
    fail_in_block(
        "{} called {} with mask {:#010x}, which names lanes that do not exist: its warp has lanes "
        "{:#010x} only (the block has {} threads)",
        thread_text(self), op_name(op), mask, warp.present, threads_);
  }
  if (mask & warp.exited) {
    const unsigned gone = static_cast<unsigned>(std::countr_zero(mask & warp.exited));
    fail_in_block("{} called {} with mask {:#010x}, which names lane {} ({}) that has already exited",
                  thread_text(self), op_name(op), mask, gone, thread_text(base + gone));
  }
  if (is_shuffle(op) && (width < 1 || width > static_cast<int>(kWarpLanes) || (width & (width - 1)) != 0)) {
    fail_in_block("{} called {} with width {}; it must be a power of two from 1 to 32", thread_text(self), op_name(op),
                  width);
  }
  // The group this call joins: one whose mask names this lane or whose waiting lanes this mask names.
  unsigned joined = warp.groups;
  for (unsigned g = 0; g < warp.groups; ++g) {
    const WarpGroup& group = warp.group[g];
    const unsigned group_waiting = group.mask & warp.waiting;
    if (!(group.mask & bit) && !(mask & group_waiting)) continue;
    if (group.mask != mask || group.op != op) {
      const unsigned other_lane = static_cast<unsigned>(std::countr_zero(group_waiting));
      fail_in_block(
          "{} called {} with mask {:#010x} while lane {} ({}) waits at {} with mask {:#010x}; the lanes "
          "named in a mask must all call the same warp operation with the same mask",
          thread_text(self), op_name(op), mask, other_lane, thread_text(base + other_lane), op_name(group.op),
          group.mask);
    }
    joined = g;
    break;
  }
  ThreadSlot& slot = slots_[self];
  slot.op = op;
  slot.mask = mask;
  slot.argument = argument;
  slot.width = width;
  slot.value = value;
  warp.waiting |= bit;
  if ((warp.waiting & mask) != mask) {
    if (joined == warp.groups) warp.group[warp.groups++] = WarpGroup{mask, op};
    slot.state = ThreadState::at_warp_op;
    wait();
    return slots_[self].result;
  }
  if (joined < warp.groups) warp.group[joined] = warp.group[--warp.groups];
  warp.waiting &= ~mask;
  complete_warp_op(base, mask);
  for (unsigned lanes = mask & ~bit; lanes != 0; lanes &= lanes - 1) {
    make_runnable(base + static_cast<unsigned>(std::countr_zero(lanes)));
  }
  return slot.result;
}

void Executor::complete_warp_op(unsigned base, unsigned mask) {
  const WarpOp op = slots_[base + static_cast<unsigned>(std::countr_zero(mask))].op;
  if (!is_shuffle(op)) {
    unsigned ballot = 0;
    for (unsigned lanes = mask; lanes != 0; lanes &= lanes - 1) {
      const unsigned lane = static_cast<unsigned>(std::countr_zero(lanes));
      if (op != WarpOp::sync && slots_[base + lane].value != 0) ballot |= 1u << lane;
    }
    for (unsigned lanes = mask; lanes != 0; lanes &= lanes - 1) {
      slots_[base + static_cast<unsigned>(std::countr_zero(lanes))].result = ballot;
    }
    return;
  }
  for (unsigned lanes = mask; lanes != 0; lanes &= lanes - 1) {
    const unsigned lane = static_cast<unsigned>(std::countr_zero(lanes));
    ThreadSlot& slot = slots_[base + lane];
    const unsigned source = source_lane(op, lane, slot.argument, slot.width);
    if (!(mask & (1u << source))) {
      fail_in_block(
          "{} (lane {}) reads lane {} with {}, but mask {:#010x} does not name that lane (its value is "
          "undefined on a GPU)",
          thread_text(base + lane), lane, source, op_name(op), mask);
    }
    slot.result = slots_[base + source].value;
  }
}

unsigned Executor::active_mask() const {
  const Warp& warp = warps_[current_ / kWarpLanes];
  return warp.present & ~warp.exited;
}

void Executor::deadlock() const {
  unsigned at_barrier = 0, at_warp_op = 0, warp_waiter = threads_;
  for (unsigned thread = 0; thread < threads_; ++thread) {
    if (slots_[thread].state == ThreadState::at_barrier) ++at_barrier;
    if (slots_[thread].state == ThreadState::at_warp_op && at_warp_op++ == 0) warp_waiter = thread;
  }
  std::string example;
  if (warp_waiter < threads_) {
    const ThreadSlot& slot = slots_[warp_waiter];
    const unsigned base = warp_waiter - warp_waiter % kWarpLanes;
    example = fmt::format("; e.g. {} waits at {} with mask {:#010x} for lanes {:#010x}", thread_text(warp_waiter),
                          op_name(slot.op), slot.mask, slot.mask & ~warps_[base / kWarpLanes].waiting);
  }
  fail_in_block(
      "deadlock: no thread can proceed: {} thread(s) wait at __syncthreads(), {} at warp operations, {} "
      "exited{}",
      at_barrier, at_warp_op, exited_, example);
}

}  // namespace

void run_grid(const GridLaunch& launch) { executor().run(launch); }

bool in_kernel() { return executor().active(); }

int block_barrier(int predicate) {
  Executor& self = executor();
  FLEXNN_CHECK(self.active(), "CUDA emulator: __syncthreads() called outside a kernel");
  return self.barrier(predicate);
}

std::uint64_t warp_op(WarpOp op, unsigned mask, std::uint64_t value, unsigned argument, int width) {
  Executor& self = executor();
  FLEXNN_CHECK(self.active(), "CUDA emulator: {} called outside a kernel", op_name(op));
  return self.warp_op(op, mask, value, argument, width);
}

unsigned active_mask() {
  Executor& self = executor();
  FLEXNN_CHECK(self.active(), "CUDA emulator: __activemask() called outside a kernel");
  return self.active_mask();
}

}  // namespace flexnn::emu
