// The thread-local backward sharpness behind ops::GateBackwardSharpness (0: no guard alive).
#include "engine/ops/gate_backward.hpp"

#include "engine/error.hpp"

#include <cmath>

namespace flexnn::ops {
namespace {

thread_local float backward_sharpness = 0.0f;

}  // namespace

GateBackwardSharpness::GateBackwardSharpness(float sharpness) : previous_(backward_sharpness) {
  FLEXNN_CHECK(sharpness > 0 && std::isfinite(sharpness),
               "the flexible gate's backward sharpness must be positive and finite, found {}", sharpness);
  backward_sharpness = sharpness;
}

GateBackwardSharpness::~GateBackwardSharpness() { backward_sharpness = previous_; }

float gate_backward_sharpness(float forward_sharpness) {
  return backward_sharpness > 0 ? backward_sharpness : forward_sharpness;
}

}  // namespace flexnn::ops
