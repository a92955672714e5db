// pool_shape: the one validation of a pooling call (input, kernel, stride, padding, torch's
// output-size rule), shared by max/avg pooling and the flexible layer's pool branch.
#pragma once

#include "engine/ops.hpp"
#include "kernels/cpu/pool2d.hpp"

#include <optional>

namespace flexnn::ops {

// Validates a pooling of x [N, C, H, W] and returns its kernel shape; errors name `op`.
cpu::Pool2dShape pool_shape(const char* op, const Tensor& x, Size2 kernel, std::optional<Size2> stride, Size2 padding,
                            bool ceil_mode);

}  // namespace flexnn::ops
