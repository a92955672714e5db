// Shape helpers: element counts, printing, dimension normalisation and reshape inference.
#include "engine/shape.hpp"

#include "engine/error.hpp"

#include <fmt/ranges.h>

namespace flexnn {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  int64_t d = dim < 0 ? dim + rank : dim;
  FLEXNN_CHECK(d >= 0 && d < rank, "{}: dimension {} is out of range for a tensor of rank {}", op, dim,
               rank);
  return d;
}

Shape infer_shape(Shape target, int64_t numel, const Shape& from) {
  int64_t known = 1;
  int64_t infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      FLEXNN_CHECK(infer_at < 0, "reshape: only one dimension may be -1, got {}", shape_str(target));
      infer_at = static_cast<int64_t>(i);
    } else {
      FLEXNN_CHECK(target[i] >= 0, "reshape: invalid dimension {} in {}", target[i], shape_str(target));
      known *= target[i];
    }
  }
  if (infer_at >= 0) {
    FLEXNN_CHECK(known != 0 && numel % known == 0, "reshape: cannot view {} as {}", shape_str(from),
                 shape_str(target));
    target[infer_at] = numel / known;
  }
  FLEXNN_CHECK(shape_numel(target) == numel, "reshape: cannot view {} ({} elements) as {}", shape_str(from),
               numel, shape_str(target));
  return target;
}

}  // namespace flexnn
