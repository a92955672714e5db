// The flexible gate's backward sharpness, for BPDA (Athalye, Carlini & Wagner 2018): while a
// GateBackwardSharpness guard is alive on a thread, the flexible ops (ops::flexible_blend,
// ops::flexible_conv2d) recorded on that thread differentiate a threshold gate as if its
// sharpness were the guard's, σ(s_b·(T − m)) in place of σ(s·(T − m)). Their forward values are
// unchanged, so an attack sees the hard gate's outputs and a softer gate's gradients, where the
// steep gate (s = 50) would pass almost none through its decision. Random masks are unaffected.
#pragma once

namespace flexnn::ops {

class GateBackwardSharpness {
 public:
  explicit GateBackwardSharpness(float sharpness);  // positive and finite
  ~GateBackwardSharpness();
  GateBackwardSharpness(const GateBackwardSharpness&) = delete;
  GateBackwardSharpness& operator=(const GateBackwardSharpness&) = delete;

 private:
  float previous_;
};

// The sharpness a flexible op recorded now should use in its backward: the innermost guard's on
// this thread, else the forward's own.
float gate_backward_sharpness(float forward_sharpness);

}  // namespace flexnn::ops
