// The shape the softmax kernels of both backends work on: a tensor viewed as [outer, dim, inner],
// the softmax taken along the middle axis.
#pragma once

#include <cstdint>

namespace flexnn {

struct SoftmaxShape {
  int64_t outer, dim, inner;
};

}  // namespace flexnn
