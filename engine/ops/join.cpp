// Joining and cutting tensors: concat along any dimension and slice of a range along one, on the
// inputs' device. Both copy blocks of contiguous rows; a slice along dimension 0 is a view sharing
// storage.
#include "engine/autograd/node.hpp"
#include "engine/ops.hpp"
#include "engine/ops/check.hpp"
#include "kernels/cuda/join.hpp"

#include <cstring>

namespace flexnn::ops {
namespace {

// Sizes of the dimensions before and after `dim`.
std::pair<int64_t, int64_t> outer_inner(const Shape& shape, int64_t dim) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) outer *= shape[d];
    if (d > dim) inner *= shape[d];
  }
  return {outer, inner};
}

// Copies rows [src_start, src_start + count) of dimension `dim` of src into dst at dst_start.
void copy_range(const Tensor& src, int64_t src_start, Tensor& dst, int64_t dst_start, int64_t count, int64_t dim) {
  const auto [outer, inner] = outer_inner(src.shape(), dim);
  const int64_t src_extent = src.shape()[dim], dst_extent = dst.shape()[dim];
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  if (dst.device().is_cuda()) {
    cuda::copy_rows(s + src_start * inner, src_extent * inner, d + dst_start * inner, dst_extent * inner, outer,
                    count * inner);
    return;
  }
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(d + (o * dst_extent + dst_start) * inner, s + (o * src_extent + src_start) * inner,
                static_cast<size_t>(count * inner) * sizeof(float));
}

}  // namespace

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  FLEXNN_CHECK(!tensors.empty(), "concat: no tensors given");
  for (const Tensor& t : tensors) check_float(t, "concat", "input");
  const Shape& first = tensors.front().shape();
  const int64_t d = normalize_dim(dim, static_cast<int64_t>(first.size()), "concat");
  Shape out_shape = first;
  out_shape[d] = 0;
  for (const Tensor& t : tensors) {
    bool compatible = t.shape().size() == first.size();
    for (size_t k = 0; compatible && k < first.size(); ++k) compatible = static_cast<int64_t>(k) == d || t.shape()[k] == first[k];
    FLEXNN_CHECK(compatible, "concat: shapes {} and {} differ outside dimension {}", shape_str(first),
                 shape_str(t.shape()), dim);
    out_shape[d] += t.shape()[d];
  }
  for (const Tensor& t : tensors) common_device("concat", {&tensors.front(), &t});
  Tensor out = Tensor::empty(out_shape, DType::Float32, tensors.front().device());
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(at);
    copy_range(t, 0, out, at, t.shape()[d], d);
    at += t.shape()[d];
  }
  return record(out, "concat", tensors, [tensors, starts, d](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!tensors[i].requires_grad()) {
        grads.emplace_back();
        continue;
      }
      Tensor gi = Tensor::empty(tensors[i].shape(), DType::Float32, g.device());
      copy_range(g, starts[i], gi, 0, tensors[i].shape()[d], d);
      grads.push_back(gi);
    }
    return grads;
  });
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end) {
  check_float(x, "slice", "input");
  const int64_t d = normalize_dim(dim, x.dim(), "slice");
  const int64_t extent = x.shape()[d];
  FLEXNN_CHECK(0 <= start && start <= end && end <= extent, "slice: range [{}, {}) is outside dimension {} of shape {}",
               start, end, dim, shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape[d] = end - start;
  Tensor out;
  if (d == 0) {
    out = x.detach();
    out.impl().shape = out_shape;
    out.impl().offset += start * (x.numel() / std::max<int64_t>(1, extent));
  } else {
    out = Tensor::empty(out_shape, DType::Float32, x.device());
    copy_range(x, start, out, 0, end - start, d);
  }
  const Shape x_shape = x.shape();
  return record(out, "slice", {x}, [x_shape, d, start, end](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::zeros(x_shape, DType::Float32, g.device());
    copy_range(g, 0, dx, start, end - start, d);
    return {dx};
  });
}

}  // namespace flexnn::ops
