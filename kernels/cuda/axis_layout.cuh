// How the axis kernels (reductions, softmax) cover a tensor viewed as [outer, reduced, inner]:
// each block is `width` adjacent inner lanes (so a warp reads consecutive addresses) times `height`
// threads along the reduced axis, times `groups` independent (outer index, lane tile) work items when
// one item needs fewer than a block's threads. Threads along the reduced axis combine their values
// in a shared-memory tree of fixed shape, so results depend only on the shape, never on scheduling.
#pragma once

#include "kernels/cuda/stream.cuh"

namespace flexnn::cuda {

constexpr int kAxisThreads = 256;

struct AxisLayout {
  int width, height, groups;            // powers of 2 but groups; width * height * groups <= kAxisThreads
  long long outer, reduced, inner;      // the viewed shape
  long long tiles, items, item_blocks;  // lane tiles per outer index, outer * tiles, blocks covering them
};

// The smallest power of 2 >= n, capped at `cap` (a power of 2).
inline int pow2_at_least(long long n, int cap) {
  int p = 1;
  while (p < cap && p < n) p *= 2;
  return p;
}

inline AxisLayout axis_layout(long long outer, long long reduced, long long inner) {
  AxisLayout l{};
  l.width = pow2_at_least(inner, 32);
  l.height = pow2_at_least(reduced, kAxisThreads / l.width);
  l.groups = kAxisThreads / (l.width * l.height);
  l.outer = outer;
  l.reduced = reduced;
  l.inner = inner;
  l.tiles = (inner + l.width - 1) / l.width;
  l.items = outer * l.tiles;
  l.item_blocks = (l.items + l.groups - 1) / l.groups;
  return l;
}

// One thread's place in a layout: `slot` indexes the block's shared arrays, `row` is its position
// along the reduced axis, (o, i) the output it works for; inactive threads (past the last item or
// lane) still take part in every barrier.
struct AxisThread {
  int slot, row, first_slot;  // first_slot: the slot of row 0 of the same lane, where a tree ends
  long long o, i;
  bool active;
};

__device__ __forceinline__ AxisThread axis_thread(const AxisLayout& l, long long item_block) {
  AxisThread t;
  t.slot = static_cast<int>(threadIdx.x);
  const int lane = t.slot % l.width, group = t.slot / (l.width * l.height);
  t.row = (t.slot / l.width) % l.height;
  t.first_slot = group * l.width * l.height + lane;
  const long long item = item_block * l.groups + group;
  t.o = item / l.tiles;
  t.i = (item % l.tiles) * l.width + lane;
  t.active = item < l.items && t.i < l.inner;
  return t;
}

// a + b, for tree_reduce.
struct Add {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

// Combines the values of the threads of one lane in a fixed tree; the result lands in
// values[t.first_slot]. Every thread of the block must call it (it holds barriers), after
// storing its own value in values[t.slot].
template <typename T, typename Combine>
__device__ __forceinline__ void tree_reduce(T* values, const AxisLayout& l, const AxisThread& t, Combine combine) {
  __syncthreads();
  for (int stride = l.height / 2; stride > 0; stride /= 2) {
    if (t.row < stride) values[t.slot] = combine(values[t.slot], values[t.slot + stride * l.width]);
    __syncthreads();
  }
}

}  // namespace flexnn::cuda
