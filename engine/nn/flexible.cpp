// FlexibleConv2d's construction (shape checks, threshold initialisation per mode) and forward: the
// fused ops::flexible_conv2d (or, pooling the convolution's output, conv2d then flexible_blend),
// with the random mode's mask drawn on the input's device.
#include "engine/nn/flexible.hpp"

#include "kernels/cpu/flexible.hpp"
#include "kernels/cpu/pool2d.hpp"
#include "kernels/cuda/flexible.hpp"
#include "kernels/philox.hpp"

#include <array>
#include <cmath>
#include <limits>

namespace flexnn::nn {
namespace {

constexpr std::array<std::pair<FlexMode, std::string_view>, 5> kModes{{{FlexMode::none, "none"},
                                                                       {FlexMode::standard, "standard"},
                                                                       {FlexMode::uniform, "uniform"},
                                                                       {FlexMode::random, "random"},
                                                                       {FlexMode::reverse, "reverse"}}};

}  // namespace

FlexMode parse_flex_mode(std::string_view name) {
  for (const auto& [mode, mode_name] : kModes)
    if (mode_name == name) return mode;
  fail("unknown flexible mode '{}': expected one of none, standard, uniform, random, reverse", name);
}

std::string_view flex_mode_name(FlexMode mode) { return kModes[static_cast<size_t>(mode)].second; }

FlexibleConv2d::FlexibleConv2d(const FlexibleConv2dOptions& o, Generator& gen) : options_(o), output_size_(0), gen_(&gen) {
  FLEXNN_CHECK(o.pool_source == PoolSource::conv_output || o.in_channels == o.out_channels || o.in_channels == 1,
               "FlexibleConv2d: {} input channels and {} output channels: the max-pool of the input maps input "
               "channels to output channels one to one (equal counts) or broadcasts a 1-channel input; pool the "
               "convolution's output (PoolSource::conv_output) for other counts",
               o.in_channels, o.out_channels);
  FLEXNN_CHECK(o.input_size.h > 0 && o.input_size.w > 0, "FlexibleConv2d: input size must be positive, got {}x{}",
               o.input_size.h, o.input_size.w);
  FLEXNN_CHECK(o.sharpness > 0 && std::isfinite(o.sharpness), "FlexibleConv2d: sharpness must be positive, got {}",
               o.sharpness);
  conv = register_module("conv", std::make_shared<Conv2d>(o.in_channels, o.out_channels, o.kernel, o.stride,
                                                          o.padding, o.bias, gen));
  const int64_t conv_h = (o.input_size.h + 2 * o.padding.h - o.kernel.h) / o.stride.h + 1;
  const int64_t conv_w = (o.input_size.w + 2 * o.padding.w - o.kernel.w) / o.stride.w + 1;
  output_size_ = {conv_h, conv_w};
  FLEXNN_CHECK(conv_h > 0 && conv_w > 0, "FlexibleConv2d: kernel {}x{} does not fit the {}x{} input", o.kernel.h,
               o.kernel.w, o.input_size.h, o.input_size.w);
  if (o.mode == FlexMode::none) return;
  const bool of_input = o.pool_source == PoolSource::input;
  const ops::Size2 pooled = of_input ? o.input_size : output_size_;
  const int64_t pool_h = cpu::pool_output_size(pooled.h, o.pool.kernel.h, o.pool.stride.h, o.pool.padding.h, false);
  const int64_t pool_w = cpu::pool_output_size(pooled.w, o.pool.kernel.w, o.pool.stride.w, o.pool.padding.w, false);
  FLEXNN_CHECK(pool_h == conv_h && pool_w == conv_w,
               "FlexibleConv2d: on a {}x{} input the convolution gives {}x{} maps but the max-pool of the {} ({}x{}) "
               "gives {}x{}: both branches must have the same spatial size",
               o.input_size.h, o.input_size.w, conv_h, conv_w, of_input ? "input" : "convolution's output",
               pooled.h, pooled.w, pool_h, pool_w);
  const Shape units{o.out_channels, conv_h, conv_w};
  switch (o.mode) {
    case FlexMode::standard:
    case FlexMode::reverse: {
      Tensor t = Tensor::randn(units, gen, o.threshold_mean, o.threshold_std);
      threshold = o.freeze_threshold ? register_buffer("threshold", t) : register_parameter("threshold", t);
      break;
    }
    case FlexMode::uniform: threshold = register_buffer("threshold", Tensor::full(units, o.uniform_threshold)); break;
    case FlexMode::random:
    case FlexMode::none: break;
  }
}

Tensor FlexibleConv2d::forward(const Tensor& x) {
  const FlexibleConv2dOptions& o = options_;
  FLEXNN_CHECK(x.dim() == 4 && x.size(2) == o.input_size.h && x.size(3) == o.input_size.w,
               "FlexibleConv2d: built for [N, {}, {}, {}] inputs (one threshold per output unit), found {}",
               o.in_channels, o.input_size.h, o.input_size.w, shape_str(x.shape()));
  if (o.mode == FlexMode::none) return conv->forward(x);
  ops::FlexibleStats* stats = counting_ && !is_training() ? &stats_ : nullptr;
  FlexGate gate = o.mode == FlexMode::reverse ? FlexGate::reverse_threshold : FlexGate::threshold;
  Tensor gate_values = threshold;
  if (o.mode == FlexMode::random) {
    gate = FlexGate::mask;
    gate_values = Tensor::empty({o.out_channels, output_size_.h, output_size_.w}, DType::Float32, x.device());
    const uint64_t seed = gen_->seed(), offset = gen_->reserve(philox::uniform_blocks(gate_values.numel()));
    const auto draw = x.device().is_cuda() ? cuda::flexible_random_mask : cpu::flexible_random_mask;
    draw(gate_values.numel(), seed, offset, gate_values.data<float>());
  }
  if (o.pool_source == PoolSource::conv_output) {
    // Both uses of c receive gradients; autograd adds them.
    const Tensor c = conv->forward(x);
    return ops::flexible_blend(c, c, gate_values, gate, o.sharpness, o.pool, stats);
  }
  return ops::flexible_conv2d(x, conv->weight, conv->bias, conv->stride, conv->padding, gate_values, gate,
                              o.sharpness, o.pool, stats);
}

double FlexibleConv2d::pool_fraction() const {
  if (stats_.units == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(stats_.pool_units) / static_cast<double>(stats_.units);
}

}  // namespace flexnn::nn
