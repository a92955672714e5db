// The shape both backends' batch normalisation kernels see: the input viewed as [n, c, hw]
// (hw = 1 for [N, C], H*W for [N, C, H, W], L for [N, C, L]).
#pragma once

#include <cstdint>

namespace flexnn {

struct BatchNormShape {
  int64_t n, c, hw;
};

}  // namespace flexnn
