// Reductions: sum and mean over all or some dimensions, max/argmax over one, and sum_to (the
// gradient of broadcasting), on the input's device. A multi-dimension sum runs one axis kernel per
// run of adjacent reduced dimensions, last run first.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "kernels/cpu/reduce.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/reduce.hpp"

#include <algorithm>

namespace flexnn::ops {
namespace {

// Views shape as [outer, dims first..last, inner].
ReduceShape axis_shape(const Shape& shape, int64_t first, int64_t last) {
  ReduceShape s{1, 1, 1};
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    (d < first ? s.outer : d <= last ? s.reduced : s.inner) *= shape[d];
  }
  return s;
}

std::vector<bool> reduced_mask(const Shape& shape, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask(shape.size(), false);
  for (int64_t d : dims) {
    const int64_t nd = normalize_dim(d, static_cast<int64_t>(shape.size()), op);
    FLEXNN_CHECK(!mask[nd], "{}: dimension {} given twice", op, d);
    mask[nd] = true;
  }
  return mask;
}

// The forward sum without autograd; result keeps reduced dimensions as size 1.
Tensor sum_keepdim(const Tensor& x, const std::vector<bool>& mask) {
  Tensor current = x;
  Shape shape = x.shape();
  for (int64_t last = static_cast<int64_t>(shape.size()) - 1; last >= 0; --last) {
    if (!mask[last]) continue;
    int64_t first = last;
    while (first > 0 && mask[first - 1]) --first;
    const ReduceShape s = axis_shape(shape, first, last);
    for (int64_t d = first; d <= last; ++d) shape[d] = 1;
    Tensor next = Tensor::empty(shape, DType::Float32, x.device());
    const auto sum_axis = x.device().is_cuda() ? cuda::sum_axis : cpu::sum_axis;
    sum_axis(current.data<float>(), next.data<float>(), s);
    current = next;
    last = first;
  }
  return current.same(x) ? x.detach().clone() : current;
}

// Broadcasts g (x's shape with reduced dims of size 1) back to `shape` without autograd.
Tensor expand_keepdim(const Tensor& g, const Shape& shape, const std::vector<bool>& mask) {
  Tensor current = g;
  Shape current_shape = g.shape();
  for (int64_t first = 0; first < static_cast<int64_t>(shape.size()); ++first) {
    if (!mask[first]) continue;
    int64_t last = first;
    while (last + 1 < static_cast<int64_t>(shape.size()) && mask[last + 1]) ++last;
    for (int64_t d = first; d <= last; ++d) current_shape[d] = shape[d];
    const ReduceShape s = axis_shape(current_shape, first, last);
    Tensor next = Tensor::empty(current_shape, DType::Float32, g.device());
    const auto expand_axis = g.device().is_cuda() ? cuda::expand_axis : cpu::expand_axis;
    expand_axis(current.data<float>(), next.data<float>(), s);
    current = next;
    first = last;
  }
  return current;
}

void scale_in_place(Tensor& t, float scale) {
  if (scale == 1.0f) return;
  const auto multiply = t.device().is_cuda() ? cuda::unary_forward : cpu::unary_forward;
  multiply(UnaryOp::MulScalar, t.data<float>(), t.data<float>(), t.numel(), scale, 0.0f);
}

Shape reduced_shape(const Shape& shape, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!mask[d]) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

Tensor sum_masked(const Tensor& x, const std::vector<bool>& mask, bool keepdim, float scale, const char* name) {
  Tensor out = sum_keepdim(x, mask);
  scale_in_place(out, scale);
  const Shape keep_shape = out.shape();
  out = out.reshape(reduced_shape(x.shape(), mask, keepdim));
  const Shape x_shape = x.shape();
  return record(out, name, {x}, [x_shape, keep_shape, mask, scale](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = expand_keepdim(g.reshape(keep_shape), x_shape, mask);
    scale_in_place(dx, scale);
    return {dx};
  });
}

int64_t count(const Shape& shape, const std::vector<bool>& mask) {
  int64_t n = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (mask[d]) n *= shape[d];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x) {
  check_float(x, "sum", "input");
  return sum_masked(x, std::vector<bool>(x.shape().size(), true), false, 1.0f, "sum");
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float(x, "sum", "input");
  return sum_masked(x, reduced_mask(x.shape(), dims, "sum"), keepdim, 1.0f, "sum");
}

Tensor mean(const Tensor& x) {
  check_float(x, "mean", "input");
  FLEXNN_CHECK(x.numel() > 0, "mean: input of shape {} has no elements", shape_str(x.shape()));
  const std::vector<bool> mask(x.shape().size(), true);
  return sum_masked(x, mask, false, 1.0f / static_cast<float>(x.numel()), "mean");
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_float(x, "mean", "input");
  const std::vector<bool> mask = reduced_mask(x.shape(), dims, "mean");
  const int64_t n = count(x.shape(), mask);
  FLEXNN_CHECK(n > 0, "mean: reducing zero elements of shape {}", shape_str(x.shape()));
  return sum_masked(x, mask, keepdim, 1.0f / static_cast<float>(n), "mean");
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const size_t rank = x.shape().size();
  FLEXNN_CHECK(shape.size() <= rank, "sum_to: cannot sum shape {} to {}", shape_str(x.shape()), shape_str(shape));
  std::vector<int64_t> dims;
  const size_t lead = rank - shape.size();
  for (size_t d = 0; d < rank; ++d) {
    if (d < lead) {
      dims.push_back(static_cast<int64_t>(d));
      continue;
    }
    const int64_t target = shape[d - lead];
    FLEXNN_CHECK(target == x.shape()[d] || target == 1, "sum_to: cannot sum shape {} to {}", shape_str(x.shape()),
                 shape_str(shape));
    if (target == 1 && x.shape()[d] != 1) dims.push_back(static_cast<int64_t>(d));
  }
  return sum(x, dims, true).reshape(shape);
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  check_float(x, "max", "input");
  const int64_t d = normalize_dim(dim, x.dim(), "max");
  FLEXNN_CHECK(x.shape()[d] > 0, "max: dimension {} of shape {} is empty", dim, shape_str(x.shape()));
  std::vector<bool> mask(x.shape().size(), false);
  mask[d] = true;
  const ReduceShape s = axis_shape(x.shape(), d, d);
  const Shape out_shape = reduced_shape(x.shape(), mask, keepdim);
  Tensor values = Tensor::empty(out_shape, DType::Float32, x.device());
  Tensor indices = Tensor::empty(out_shape, DType::Int64, x.device());
  const auto max_axis = x.device().is_cuda() ? cuda::max_axis : cpu::max_axis;
  max_axis(x.data<float>(), values.data<float>(), indices.data<int64_t>(), s);
  const Shape x_shape = x.shape();
  values = record(values, "max", {x}, [x_shape, s, indices](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(x_shape, DType::Float32, g.device());
    const auto backward = g.device().is_cuda() ? cuda::max_axis_backward : cpu::max_axis_backward;
    backward(g.data<float>(), indices.data<int64_t>(), dx.data<float>(), s);
    return {dx};
  });
  return {values, indices};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return max(x, dim, keepdim).indices;
}

}  // namespace flexnn::ops
