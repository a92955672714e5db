// CUDA parity of the flexible layer against the CPU reference: the blend alone (every gate kind, both
// channel mappings, several pools), the fused flexible_conv2d against the CPU composition conv2d then
// flexible_blend (forward and the gradients of input, weight, bias and thresholds), random masks bit
// for bit, pool-unit counts, determinism of the fused backward, nn::FlexibleConv2d moved with
// Module::to(kCUDA) in every mode, and device-mismatch errors.
//
// Tolerances (|cuda − cpu| ≤ atol + rtol·|cpu|). Both devices see the same x and T, so the pool
// (comparisons only) and z = s·(T − m) are identical: the pool-unit counts, the argmax routing (ties
// included) and the random masks must match exactly. What differs is rounding:
// - the gate's exp: the CPU uses a Cephes polynomial (within 2 ulp of exp), CUDA expf; so g and 1 − g
//   differ by a few ulp, and the blend alone matches to a few ulp of |g·m| + |(1 − g)·c| ≤ 2 (values
//   in [-1, 1)): kBlend, 1e-6 + 4e-6 relative (seen on the emulator: at most 1.2e-7). Its dT and pool
//   gradient carry the gate's slope s·g·(1 − g) ≤ s/4 = 12.5 times |m − c| ≤ 2: terms up to 25, a few
//   ulp each, summed over at most 5 channels or 3 images: kBlendGate, 2e-5 + 1e-5 relative (seen:
//   4.8e-6 on values near 23).
// - the fused layer's convolution sums in another order than the CPU's: c differs by a few ulp of
//   the sum of |w·x| (up to about 10 here: at most 594 taps, weights in ±0.1). y takes that with
//   weight 1 − g ≤ 1: kFusedOutput, 2e-5 + 1e-5 relative (seen: 6.8e-6 with 594 taps). dT and the
//   pool share of dx take it through the steep gate's slope (≤ 12.5 times), and sum over channels
//   or ≤ 3 images: kFusedGate, 2e-4 + 2e-5 relative (seen: 5.9e-5 on values near 26). dweight and
//   dbias sum up to 2 x 576 products in other orders: kFusedParams, 2e-4 + 2e-5 relative (seen:
//   1.7e-5 on values near 22). The inputs need no care near the threshold: c enters the gate's
//   argument nowhere (only T and m do), so the steep gate never turns a rounding difference of c
//   into a different branch. A wrong index, a missing tap or a gradient routed to the wrong window
//   is off by 0.01 or more.
#include "engine/flexnn.hpp"
#include "engine/nn/flexible.hpp"
#include "kernels/cpu/flexible.hpp"
#include "kernels/cuda/flexible.hpp"
#include "parity.hpp"
#include "random_values.hpp"
#include "test_helpers.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace flexnn;
using flexnn::testing::bit_identical;
using flexnn::testing::error_message;
using flexnn::testing::random_values;
using flexnn::testing::require_close;
using flexnn::testing::Tolerance;

namespace {

constexpr Tolerance kBlend{1e-6f, 4e-6f};
constexpr Tolerance kBlendGate{2e-5f, 1e-5f};
constexpr Tolerance kFusedOutput{2e-5f, 1e-5f};
constexpr Tolerance kFusedGate{2e-4f, 2e-5f};
constexpr Tolerance kFusedParams{2e-4f, 2e-5f};
constexpr float kSharpness = 50.0f;

const FlexGate kGates[] = {FlexGate::threshold, FlexGate::reverse_threshold, FlexGate::mask};

const char* gate_label(FlexGate gate) {
  return gate == FlexGate::threshold ? "threshold" : gate == FlexGate::reverse_threshold ? "reverse" : "mask";
}

// Values in [low, high), deterministic in seed.
Tensor uniform(const Shape& shape, uint32_t seed, float low = -1.0f, float high = 1.0f) {
  std::vector<float> v = random_values(shape_numel(shape), seed);
  for (float& x : v) x = low + (x + 1.0f) * 0.5f * (high - low);
  return Tensor::from_vector(v, shape);
}

// Gate values for units [C, H, W]: thresholds spread over the pooled values' range (so gates are
// open, shut and in between), or a random 0/1 mask.
Tensor gate_values(FlexGate gate, const Shape& units, uint32_t seed) {
  if (gate != FlexGate::mask) return uniform(units, seed, -0.5f, 1.0f);
  Tensor t = uniform(units, seed);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] < 0.0f ? 1.0f : 0.0f;
  return t;
}

// t rounded to multiples of 1/2 (in place): values in [-1, 1) then take 5 values, so that pooling
// windows hold several maxima and thresholds equal pooled values.
Tensor on_grid(Tensor t) {
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::round(p[i] * 2.0f) / 2.0f;
  return t;
}

// The output and the input gradients of f on one device, from host inputs (those flagged in
// `grad` made leaves requiring grad) and the same output gradient on both devices.
struct Run {
  Tensor y;
  std::vector<Tensor> grads;
};

Run run(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
        const std::vector<bool>& grad, Device device) {
  std::vector<Tensor> on_device;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    on_device.push_back(inputs[i].defined() ? inputs[i].to(device).detach() : Tensor());
    if (grad[i]) on_device.back().requires_grad_(true);
  }
  Run r{f(on_device), {}};
  std::vector<float> g(static_cast<std::size_t>(r.y.numel()));
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.37f * static_cast<float>(i) + 0.1f);
  r.y.backward(Tensor::from_vector(g, r.y.shape(), device));
  for (std::size_t i = 0; i < inputs.size(); ++i) r.grads.push_back(grad[i] ? on_device[i].grad() : Tensor());
  return r;
}

// Compares the CUDA run of f with the CPU run: the output within `output`, gradient i within tols[i].
void require_parity(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                    const std::vector<bool>& grad, Tolerance output, const std::vector<Tolerance>& tols,
                    const std::vector<std::string>& names) {
  const Run cpu = run(f, inputs, grad, kCPU), cuda = run(f, inputs, grad, kCUDA);
  require_close(cuda.y, cpu.y, output, "output");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!grad[i]) continue;
    REQUIRE(cpu.grads[i].defined());
    REQUIRE(cuda.grads[i].defined());
    require_close(cuda.grads[i], cpu.grads[i], tols[i], "gradient of " + names[i]);
  }
}

struct BlendCase {
  Shape x;
  int64_t channels;
  ops::FlexiblePool pool;
};

Shape blend_output(const BlendCase& k) {
  const int64_t h = (k.x[2] + 2 * k.pool.padding.h - k.pool.kernel.h) / k.pool.stride.h + 1;
  const int64_t w = (k.x[3] + 2 * k.pool.padding.w - k.pool.kernel.w) / k.pool.stride.w + 1;
  return {k.x[0], k.channels, h, w};
}

struct FusedCase {
  const char* name;
  int64_t n, c_in, c_out, h, w;
  ops::Size2 kernel, stride, padding;
  ops::FlexiblePool pool;
  bool bias;
};

const std::vector<FusedCase> kFusedCases = {
    {"fmnist-small 1->12 5x5, pool 5", 2, 1, 12, 28, 28, 5, 1, 0, {5, 1, 0}, true},
    {"VGG-like 8->8 3x3, pool 3", 3, 8, 8, 10, 10, 3, 1, 0, {3, 1, 0}, true},
    {"padded 20->20 3x3 (wide tiles), pool 3 pad 1", 2, 20, 20, 6, 7, 3, 1, 1, {3, 1, 1}, false},
    {"66->66 (two channel tiles, image chunks)", 3, 66, 66, 5, 5, 3, 1, 0, {3, 1, 0}, true},
    {"strided 3->3 3x3 s2, pool 3 s2", 2, 3, 3, 9, 9, 3, 2, 0, {3, 2, 0}, true},
    {"rectangular 2->2 3x2, pool 3x2", 2, 2, 2, 8, 9, {3, 2}, 1, 0, {{3, 2}, 1, 0}, true},
    {"1->1 3x3 pad 1, pool 3 pad 1", 1, 1, 1, 7, 5, 3, 1, 1, {3, 1, 1}, false},
};

Shape fused_units(const FusedCase& k) {
  const int64_t h = (k.h + 2 * k.padding.h - k.kernel.h) / k.stride.h + 1;
  const int64_t w = (k.w + 2 * k.padding.w - k.kernel.w) / k.stride.w + 1;
  return {k.c_out, h, w};
}

// x, weight (scaled to keep c of order 1), bias (or undefined) and gate values of a fused case.
std::vector<Tensor> fused_inputs(const FusedCase& k, FlexGate gate, uint32_t seed) {
  Tensor weight = uniform({k.c_out, k.c_in, k.kernel.h, k.kernel.w}, seed + 1, -0.1f, 0.1f);
  return {uniform({k.n, k.c_in, k.h, k.w}, seed), weight, k.bias ? uniform({k.c_out}, seed + 2, -0.2f, 0.2f) : Tensor(),
          gate_values(gate, fused_units(k), seed + 3)};
}

std::function<Tensor(const std::vector<Tensor>&)> fused_op(const FusedCase& k, FlexGate gate) {
  return [k, gate](const std::vector<Tensor>& in) {
    return ops::flexible_conv2d(in[0], in[1], in[2], k.stride, k.padding, in[3], gate, kSharpness, k.pool);
  };
}

std::vector<bool> fused_grads(const FusedCase& k, FlexGate gate) {
  return {true, true, k.bias, gate != FlexGate::mask};
}

}  // namespace

TEST_CASE("flexible_blend on CUDA matches the CPU in every gate kind and channel mapping", "[cuda][flexible]") {
  const std::vector<BlendCase> cases = {
      {{3, 4, 8, 8}, 4, {3, 1, 1}},                 // one to one, padded pool
      {{2, 1, 12, 12}, 5, {5, 1, 0}},               // 1 channel broadcast to 5, the FMNIST pool
      {{2, 3, 9, 7}, 3, {{3, 2}, {2, 1}, {1, 0}}},  // strided, rectangular
      {{1, 2, 5, 6}, 2, {2, 2, 0}},                 // non-overlapping windows
      {{2, 1, 7, 5}, 3, {3, 1, 1}},                 // broadcast with a padded pool, odd sizes
      {{1, 1, 1, 1}, 1, {1, 1, 0}},                 // one element
  };
  uint32_t seed = 10;
  for (const BlendCase& k : cases) {
    const Shape out = blend_output(k);
    for (const FlexGate gate : kGates) {
      INFO("x " << shape_str(k.x) << ", " << k.channels << " channels, pool " << k.pool.kernel.h << "x"
                << k.pool.kernel.w << " stride " << k.pool.stride.h << "x" << k.pool.stride.w << ", gate "
                << gate_label(gate));
      const std::vector<Tensor> inputs = {uniform(out, seed), uniform(k.x, seed + 1),
                                          gate_values(gate, {out[1], out[2], out[3]}, seed + 2)};
      seed += 3;
      require_parity(
          [&](const std::vector<Tensor>& in) {
            return ops::flexible_blend(in[0], in[1], in[2], gate, kSharpness, k.pool);
          },
          inputs, {true, true, gate != FlexGate::mask}, kBlend, {kBlend, kBlendGate, kBlendGate},
          {"c", "x", "threshold"});
    }
  }
}

TEST_CASE("flexible_conv2d on CUDA (fused) matches the CPU composition, forward and every gradient",
          "[cuda][flexible]") {
  uint32_t seed = 100;
  for (const FusedCase& k : kFusedCases)
    for (const FlexGate gate : kGates) {
      INFO(k.name << ", gate " << gate_label(gate));
      require_parity(fused_op(k, gate), fused_inputs(k, gate, seed += 4), fused_grads(k, gate), kFusedOutput,
                     {kFusedGate, kFusedParams, kFusedParams, kFusedGate}, {"x", "weight", "bias", "threshold"});
    }
}

TEST_CASE("tied windows route the pool's gradient to the first maximum, as on the CPU", "[cuda][flexible]") {
  // Inputs on a grid of 5 values: most windows hold several maxima.
  for (const FlexGate gate : kGates) {
    INFO("gate " << gate_label(gate));
    for (const BlendCase& k : {BlendCase{{2, 3, 7, 6}, 3, {3, 1, 1}}, BlendCase{{2, 1, 9, 9}, 4, {5, 1, 0}}}) {
      const Shape out = blend_output(k);
      require_parity(
          [&](const std::vector<Tensor>& in) {
            return ops::flexible_blend(in[0], in[1], in[2], gate, kSharpness, k.pool);
          },
          {uniform(out, 1), on_grid(uniform(k.x, 2)), gate_values(gate, {out[1], out[2], out[3]}, 3)},
          {true, true, gate != FlexGate::mask}, kBlend, {kBlend, kBlendGate, kBlendGate}, {"c", "x", "threshold"});
    }
    for (const std::size_t c : {std::size_t{0}, std::size_t{1}}) {
      const FusedCase& k = kFusedCases[c];
      INFO(k.name);
      std::vector<Tensor> inputs = fused_inputs(k, gate, 5);
      inputs[0] = on_grid(inputs[0]);
      require_parity(fused_op(k, gate), inputs, fused_grads(k, gate), kFusedOutput,
                     {kFusedGate, kFusedParams, kFusedParams, kFusedGate}, {"x", "weight", "bias", "threshold"});
    }
  }
}

TEST_CASE("flexible_conv2d on CUDA computes only the gradients asked for, the same ones", "[cuda][flexible]") {
  const FusedCase& k = kFusedCases[1];
  const std::vector<Tensor> inputs = fused_inputs(k, FlexGate::threshold, 7);
  const std::vector<std::vector<bool>> subsets = {
      {true, false, false, false}, {false, true, false, false}, {false, false, true, false},
      {false, false, false, true}, {false, true, true, true}};
  const Run all = run(fused_op(k, FlexGate::threshold), inputs, {true, true, true, true}, kCUDA);
  for (const std::vector<bool>& subset : subsets) {
    const Run some = run(fused_op(k, FlexGate::threshold), inputs, subset, kCUDA);
    for (std::size_t i = 0; i < subset.size(); ++i) {
      if (!subset[i]) continue;
      INFO("gradient " << i);
      CHECK(bit_identical(some.grads[i].to(kCPU).to_vector(), all.grads[i].to(kCPU).to_vector()));
    }
  }
}

TEST_CASE("the fused backward is deterministic: two runs agree bit for bit", "[cuda][flexible]") {
  for (const std::size_t c : {std::size_t{0}, std::size_t{3}}) {
    const FusedCase& k = kFusedCases[c];
    const FlexGate gate = FlexGate::reverse_threshold;
    const std::vector<Tensor> inputs = fused_inputs(k, gate, 11);
    const Run first = run(fused_op(k, gate), inputs, fused_grads(k, gate), kCUDA);
    const Run second = run(fused_op(k, gate), inputs, fused_grads(k, gate), kCUDA);
    INFO(k.name);
    CHECK(bit_identical(first.y.to(kCPU).to_vector(), second.y.to(kCPU).to_vector()));
    for (std::size_t i = 0; i < first.grads.size(); ++i)
      if (first.grads[i].defined())
        CHECK(bit_identical(first.grads[i].to(kCPU).to_vector(), second.grads[i].to(kCPU).to_vector()));
  }
}

TEST_CASE("an empty batch gives an empty output and zero parameter gradients on CUDA", "[cuda][flexible]") {
  FusedCase k = kFusedCases[1];
  k.n = 0;
  for (const FlexGate gate : kGates) {
    INFO("gate " << gate_label(gate));
    const Run r = run(fused_op(k, gate), fused_inputs(k, gate, 3), fused_grads(k, gate), kCUDA);
    CHECK(r.y.shape() == Shape{0, 8, 8, 8});
    CHECK(r.grads[0].numel() == 0);
    for (std::size_t i = 1; i < r.grads.size(); ++i)
      if (r.grads[i].defined())
        for (const float v : r.grads[i].to(kCPU).to_vector()) REQUIRE(v == 0.0f);
  }
}

TEST_CASE("random flexible masks are bit-identical on the CPU and CUDA", "[cuda][flexible]") {
  for (const int64_t units : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{6912}, int64_t{4097}})
    for (const uint64_t offset : {uint64_t{0}, uint64_t{7}, (uint64_t{1} << 33) + 5}) {
      INFO(units << " units at offset " << offset);
      std::vector<float> host(static_cast<std::size_t>(units));
      cpu::flexible_random_mask(units, 0x5eedULL, offset, host.data());
      Tensor device = Tensor::empty({units}, DType::Float32, kCUDA);
      cuda::flexible_random_mask(units, 0x5eedULL, offset, device.data<float>());
      const std::vector<float> from_device = device.to(kCPU).to_vector();
      CHECK(bit_identical(from_device, host));
      if (units >= 4097) {  // a fair coin, and not the same bits as another offset
        int64_t ones = 0;
        for (float v : from_device) ones += v == 1.0f;
        CHECK(std::abs(static_cast<double>(ones) / static_cast<double>(units) - 0.5) < 0.05);
      }
    }
}

TEST_CASE("pool-unit counts are equal on the CPU and CUDA", "[cuda][flexible]") {
  uint32_t seed = 300;
  for (const FlexGate gate : kGates) {
    INFO("gate " << gate_label(gate));
    const BlendCase k{{3, 1, 12, 12}, 5, {5, 1, 0}};
    const Shape out = blend_output(k);
    for (const bool grid : {false, true}) {  // on the grid, T = m exactly for some units: not pooling
      INFO((grid ? "x and T on a grid" : "x and T continuous"));
      const Tensor c = uniform(out, seed), x = uniform(k.x, seed + 1);
      const Tensor t = gate_values(gate, {out[1], out[2], out[3]}, seed + 2);
      const Tensor gx = grid ? on_grid(x.clone()) : x, gt = grid ? on_grid(t.clone()) : t;
      ops::FlexibleStats on_cpu, on_cuda;
      ops::flexible_blend(c, gx, gt, gate, kSharpness, k.pool, &on_cpu);
      ops::flexible_blend(c.to(kCUDA), gx.to(kCUDA), gt.to(kCUDA), gate, kSharpness, k.pool, &on_cuda);
      CHECK(on_cuda.pool_units == on_cpu.pool_units);
      CHECK(on_cuda.units == on_cpu.units);
      CHECK(on_cpu.pool_units > 0);
      CHECK(on_cpu.pool_units < on_cpu.units);
    }

    for (const FusedCase& f : {kFusedCases[0], kFusedCases[1]}) {
      const std::vector<Tensor> in = fused_inputs(f, gate, seed += 4);
      ops::FlexibleStats fused_cpu, fused_cuda;
      ops::flexible_conv2d(in[0], in[1], in[2], f.stride, f.padding, in[3], gate, kSharpness, f.pool, &fused_cpu);
      ops::flexible_conv2d(in[0].to(kCUDA), in[1].to(kCUDA), in[2].to(kCUDA), f.stride, f.padding, in[3].to(kCUDA),
                           gate, kSharpness, f.pool, &fused_cuda);
      CHECK(fused_cuda.pool_units == fused_cpu.pool_units);
      CHECK(fused_cuda.units == fused_cpu.units);
      CHECK(fused_cpu.pool_units > 0);
    }
  }
}

TEST_CASE("nn::FlexibleConv2d moved to CUDA gives the CPU module's outputs and gradients in every mode",
          "[cuda][flexible]") {
  using nn::FlexMode;
  for (const FlexMode mode :
       {FlexMode::standard, FlexMode::uniform, FlexMode::random, FlexMode::reverse, FlexMode::none}) {
    INFO("mode " << nn::flex_mode_name(mode));
    nn::FlexibleConv2dOptions o;
    o.in_channels = 1;
    o.out_channels = 12;
    o.kernel = 5;
    o.pool = {5, 1, 0};
    o.input_size = 28;
    o.mode = mode;
    o.uniform_threshold = 0.6f;  // the pooled pixels are mostly above it: some units pool, some do not
    Generator gen_cpu(21), gen_cuda(21);
    nn::FlexibleConv2d on_cpu(o, gen_cpu), on_cuda(o, gen_cuda);
    on_cuda.to(kCUDA);
    for (int step = 0; step < 2; ++step) {  // the random mode draws a fresh mask each time, in step
      INFO("step " << step);
      const Tensor x = uniform({2, 1, 28, 28}, 40 + step, 0.0f, 1.0f);
      const Tensor x_cpu = x.clone().requires_grad_(true), x_cuda = x.to(kCUDA).detach().requires_grad_(true);
      on_cpu.zero_grad();
      on_cuda.zero_grad();
      const Tensor y_cpu = on_cpu(x_cpu), y_cuda = on_cuda(x_cuda);
      require_close(y_cuda, y_cpu, kFusedOutput, "output");
      std::vector<float> g(static_cast<std::size_t>(y_cpu.numel()));
      for (std::size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.11f * static_cast<float>(i));
      y_cpu.backward(Tensor::from_vector(g, y_cpu.shape()));
      y_cuda.backward(Tensor::from_vector(g, y_cpu.shape(), kCUDA));
      require_close(x_cuda.grad(), x_cpu.grad(), kFusedGate, "input gradient");
      const auto params_cpu = on_cpu.named_parameters(), params_cuda = on_cuda.named_parameters();
      REQUIRE(params_cpu.size() == params_cuda.size());
      for (std::size_t i = 0; i < params_cpu.size(); ++i) {
        REQUIRE(params_cuda[i].second.device().is_cuda());
        require_close(params_cuda[i].second.grad(), params_cpu[i].second.grad(),
                      params_cpu[i].first == "threshold" ? kFusedGate : kFusedParams, params_cpu[i].first);
      }
    }
    CHECK(gen_cuda.offset() == gen_cpu.offset());

    // Evaluation counts the units that took the pool branch, identically.
    on_cpu.eval();
    on_cuda.eval();
    on_cpu.count_pool_units(true);
    on_cuda.count_pool_units(true);
    const Tensor x = uniform({2, 1, 28, 28}, 50, 0.0f, 1.0f);
    NoGradGuard no_grad;
    require_close(on_cuda(x.to(kCUDA)), on_cpu(x), kFusedOutput, "evaluation output");
    CHECK(on_cuda.pool_counts().pool_units == on_cpu.pool_counts().pool_units);
    CHECK(on_cuda.pool_counts().units == on_cpu.pool_counts().units);
  }
}

TEST_CASE("the flexible ops name the op and both devices on a device mismatch, and check shapes on CUDA",
          "[cuda][flexible]") {
  const Tensor c = uniform({1, 2, 4, 4}, 1), x = uniform({1, 2, 6, 6}, 2), t = uniform({2, 4, 4}, 3);
  CHECK_THAT(error_message([&] { ops::flexible_blend(c.to(kCUDA), x, t, FlexGate::threshold, 50, {3}); }),
             Catch::Contains("flexible_blend") && Catch::Contains("cpu") && Catch::Contains("cuda"));
  const Tensor weight = uniform({2, 2, 3, 3}, 4);
  CHECK_THAT(error_message([&] {
               ops::flexible_conv2d(x, weight.to(kCUDA), Tensor(), 1, 0, t, FlexGate::threshold, 50, {3});
             }),
             Catch::Contains("flexible_conv2d") && Catch::Contains("cpu") && Catch::Contains("cuda"));
  CHECK_THAT(error_message([&] {
               ops::flexible_conv2d(x.to(kCUDA), weight.to(kCUDA), Tensor(), 1, 1, t.to(kCUDA), FlexGate::threshold,
                                    50, {3});
             }),
             Catch::Contains("flexible_conv2d") && Catch::Contains("same spatial size"));
  CHECK_THAT(error_message([&] {
               ops::flexible_conv2d(x.to(kCUDA), uniform({2, 3, 3, 3}, 5).to(kCUDA), Tensor(), 1, 0, t.to(kCUDA),
                                    FlexGate::threshold, 50, {3});
             }),
             Catch::Contains("flexible_conv2d") && Catch::Contains("channels"));
}
