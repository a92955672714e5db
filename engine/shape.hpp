// Shape: a tensor's dimensions, row-major. Helpers to count elements, normalise a dimension
// index and print a shape in error messages as [2, 3, 4].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flexnn {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);
// Maps a possibly negative dimension index to [0, rank); throws naming the op otherwise.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);
// Resolves one -1 entry of a reshape target against numel; throws naming both shapes.
Shape infer_shape(Shape target, int64_t numel, const Shape& from);

}  // namespace flexnn
