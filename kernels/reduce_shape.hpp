// The shape every axis reduction of both backends works on: a tensor viewed as
// [outer, reduced, inner], the middle axis reduced. Any reduction over one dimension (or a run of
// adjacent ones) takes this form.
#pragma once

#include <cstdint>

namespace flexnn {

struct ReduceShape {
  int64_t outer, reduced, inner;
};

}  // namespace flexnn
