// nn::FlexibleConv2d: the paper's flexible layer. A convolution and a max-pool of the same input
// run side by side, and each output unit blends them through a steep sigmoid gate on its own
// threshold T (Eq. 1, kernels/flexible_gate.hpp). The forward is ops::flexible_conv2d: on CUDA one
// fused kernel each way, on the CPU the convolution then the fused blend. Optionally the pool branch
// pools the convolution's output instead of the input (PoolSource::conv_output, for layers whose
// input and output channel counts differ, as in the all-flexible VGG16): conv2d, then
// flexible_blend(c, c, ...). Parameter names: conv.weight, conv.bias, threshold ([C_out, H_out,
// W_out], in every mode that has one).
#pragma once

#include "engine/generator.hpp"
#include "engine/nn/layers.hpp"

#include <string_view>

namespace flexnn::nn {

// standard: T learned (unless frozen), pool where m < T. uniform: one fixed T for every unit,
// never trained. random: a fresh 0/1 mask (p = 1/2) at every forward, training and evaluation.
// reverse: pool where m > T. none: the baseline, the convolution alone.
enum class FlexMode { none, standard, uniform, random, reverse };
FlexMode parse_flex_mode(std::string_view name);  // an error lists the valid names
std::string_view flex_mode_name(FlexMode mode);

// What the pool branch max-pools: the layer's input (the paper's layer) or the convolution
// branch's output c (then m = pool(c) and f = g·m + (1 − g)·c; any channel counts).
enum class PoolSource { input, conv_output };

struct FlexibleConv2dOptions {
  int64_t in_channels = 1, out_channels = 1;  // pool of the input: equal, or in_channels = 1 (broadcast)
  ops::Size2 kernel = 3, stride = 1, padding = 0;  // the convolution
  bool bias = true;
  ops::FlexiblePool pool{3};  // the max-pool; must give the convolution's output size
  PoolSource pool_source = PoolSource::input;
  ops::Size2 input_size = 1;  // the H x W this layer is built for: T has one value per unit
  FlexMode mode = FlexMode::standard;
  float sharpness = 50.0f;
  float threshold_mean = 0.5f, threshold_std = 0.1f;  // standard and reverse: T ~ N(mean, std)
  float uniform_threshold = 0.1f;                     // uniform: T = this everywhere
  bool freeze_threshold = false;                      // keep a standard / reverse T fixed
};

class FlexibleConv2d : public Module {
 public:
  // Initialisation and the random mode's masks draw from `gen`, which must outlive the layer.
  explicit FlexibleConv2d(const FlexibleConv2dOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  const FlexibleConv2dOptions& options() const { return options_; }
  ops::Size2 output_size() const { return output_size_; }

  // While counting is on, forwards in evaluation mode count the units that took the pool branch;
  // pool_fraction() is their fraction since the last reset (NaN before any).
  void count_pool_units(bool on) { counting_ = on; }
  double pool_fraction() const;
  const ops::FlexibleStats& pool_counts() const { return stats_; }
  void reset_pool_fraction() { stats_ = {}; }

  std::shared_ptr<Conv2d> conv;
  Tensor threshold;  // a parameter when learned, a buffer when fixed; undefined for none / random

 private:
  FlexibleConv2dOptions options_;
  ops::Size2 output_size_;
  Generator* gen_;
  ops::FlexibleStats stats_;
  bool counting_ = false;
};

}  // namespace flexnn::nn
