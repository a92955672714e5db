// Tests of the flexible layer: the fused kernel against the same formula composed from primitive
// ops (forward and every gradient), finite-difference checks in every gate mode away from pooling
// ties, thread-count independence, the module's modes, names, masks and pool fraction, and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/nn/flexible.hpp"
#include "engine/ops.hpp"
#include "gradcheck.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using ops::Size2;
using testing::bit_identical;
using testing::error_message;

struct BlendCase {
  Shape x;          // input [N, Cin, H, W]
  int64_t c_out;    // convolution channels
  ops::FlexiblePool pool;
};

// The pool's output shape for a case: [N, c_out, Hp, Wp].
Shape out_shape(const BlendCase& k) {
  const int64_t h = (k.x[2] + 2 * k.pool.padding.h - k.pool.kernel.h) / k.pool.stride.h + 1;
  const int64_t w = (k.x[3] + 2 * k.pool.padding.w - k.pool.kernel.w) / k.pool.stride.w + 1;
  return {k.x[0], k.c_out, h, w};
}

// An input whose values all differ by at least 0.05 (a shuffled grid), so a finite-difference
// step never changes which element a pooling window picks.
Tensor tie_free_input(const Shape& shape, Generator& gen) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const std::vector<int64_t> order = gen.permutation(n);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = 0.05f * static_cast<float>(order[i] - n / 2);
  return Tensor::from_vector(v, shape);
}

// Eq. 1 composed from primitive ops: the reference the fused kernel must match.
Tensor composed_blend(const Tensor& c, const Tensor& x, const Tensor& gate_values, FlexGate gate, float s,
                      const ops::FlexiblePool& pool) {
  const Tensor m = ops::max_pool2d(x, pool.kernel, pool.stride, pool.padding);
  if (gate == FlexGate::mask) return gate_values * m + (1.0f - gate_values) * c;
  const Tensor z = gate == FlexGate::threshold ? (gate_values - m) * s : (m - gate_values) * s;
  return ops::sigmoid(z) * m + ops::sigmoid(-z) * c;
}

// Gate values for a case: thresholds spread around the pooled values (so gates are neither all
// saturated nor all open), or a random 0/1 mask.
Tensor gate_values_for(FlexGate gate, const Shape& out, Generator& gen) {
  const Shape units{out[1], out[2], out[3]};
  if (gate != FlexGate::mask) return Tensor::randn(units, gen, 0.0f, 1.0f);
  Tensor mask = Tensor::rand(units, gen);
  float* p = mask.data<float>();
  for (int64_t i = 0; i < mask.numel(); ++i) p[i] = p[i] < 0.5f ? 1.0f : 0.0f;
  return mask;
}

const std::vector<BlendCase> kCases = {
    {{3, 4, 8, 8}, 4, {3, 1, 1}},     // one to one, padded pool
    {{2, 1, 12, 12}, 5, {5, 1, 0}},   // 1 channel broadcast to 5, the FMNIST layer's pool
    {{2, 3, 9, 7}, 3, {{3, 2}, {2, 1}, {1, 0}}},  // strided, rectangular
};
const FlexGate kGates[] = {FlexGate::threshold, FlexGate::reverse_threshold, FlexGate::mask};

}  // namespace

TEST_CASE("flexible_blend matches Eq. 1 composed from primitive ops, forward and backward", "[flexible]") {
  Generator gen(5);
  for (const BlendCase& k : kCases) {
    for (FlexGate gate : kGates) {
      for (float s : {50.0f, 4.0f}) {
        CAPTURE(shape_str(k.x), k.c_out, static_cast<int>(gate), s);
        const Shape out = out_shape(k);
        Tensor x = Tensor::randn(k.x, gen).requires_grad_();
        Tensor c = Tensor::randn(out, gen).requires_grad_();
        Tensor t = gate_values_for(gate, out, gen);
        if (gate != FlexGate::mask) t.requires_grad_();
        const Tensor dy = Tensor::randn(out, gen);

        const Tensor fused = ops::flexible_blend(c, x, t, gate, s, k.pool);
        fused.backward(dy);
        const std::vector<float> f = fused.to_vector(), dx = x.grad().to_vector(), dc = c.grad().to_vector();
        const std::vector<float> dt = gate != FlexGate::mask ? t.grad().to_vector() : std::vector<float>{};
        for (Tensor* p : {&x, &c, &t}) p->set_grad(Tensor());

        const Tensor composed = composed_blend(c, x, t, gate, s, k.pool);
        composed.backward(dy);
        const std::vector<float> r = composed.to_vector();
        // 1e-6 relative to the size of the terms blended (the sum itself may cancel).
        const std::vector<float> mv = ops::max_pool2d(x.detach(), k.pool.kernel, k.pool.stride, k.pool.padding)
                                          .to_vector();
        const std::vector<float> cv = c.to_vector();
        for (size_t i = 0; i < f.size(); ++i) {
          const size_t unit = i % (out[1] * out[2] * out[3]), image = i / (out[1] * out[2] * out[3]);
          const size_t pooled = k.x[1] == 1 ? image * out[2] * out[3] + unit % (out[2] * out[3])
                                            : i;
          const double scale = std::abs(mv[pooled]) + std::abs(cv[i]);
          REQUIRE(std::abs(f[i] - r[i]) <= 1e-6 * scale + 1e-30);
        }
        auto close = [](const std::vector<float>& a, const std::vector<float>& b, double rtol) {
          REQUIRE(a.size() == b.size());
          double largest = 0;
          for (float v : b) largest = std::max(largest, static_cast<double>(std::abs(v)));
          for (size_t i = 0; i < a.size(); ++i) REQUIRE(std::abs(a[i] - b[i]) <= rtol * largest + 1e-7);
        };
        close(dx, x.grad().to_vector(), 1e-5);
        close(dc, c.grad().to_vector(), 1e-5);
        if (gate != FlexGate::mask) close(dt, t.grad().to_vector(), 1e-5);
      }
    }
  }
}

TEST_CASE("flexible_blend gradients pass finite-difference checks in every gate mode", "[flexible]") {
  Generator gen(6);
  for (const BlendCase& k : kCases) {
    for (FlexGate gate : kGates) {
      CAPTURE(shape_str(k.x), static_cast<int>(gate));
      const Shape out = out_shape(k);
      Tensor x = tie_free_input(k.x, gen).requires_grad_();
      Tensor c = Tensor::randn(out, gen).requires_grad_();
      // Thresholds near the pooled values, where the gate's slope is large at sharpness 4.
      Tensor t = gate == FlexGate::mask ? gate_values_for(gate, out, gen) : Tensor::randn({out[1], out[2], out[3]}, gen, 0.0f, 0.3f);
      if (gate != FlexGate::mask) t.requires_grad_();
      testing::check_gradients(
          [&](const std::vector<Tensor>& in) { return ops::flexible_blend(in[0], in[1], in[2], gate, 4.0f, k.pool); },
          {c, x, t});
    }
  }
}

TEST_CASE("flexible_blend routes the pool's gradient to the first maximum of a tied window", "[flexible]") {
  // A constant input: every window is a tie; torch routes to the first element in row-major
  // order, and so must the fused kernel (the mask picks the pool branch everywhere).
  Tensor x = Tensor::full({1, 1, 4, 4}, 2.0f).requires_grad_();
  Tensor c = Tensor::zeros({1, 1, 2, 2});
  Tensor mask = Tensor::ones({1, 2, 2});
  ops::flexible_blend(c, x, mask, FlexGate::mask, 50.0f, {3, 1, 0}).backward(Tensor::ones({1, 1, 2, 2}));
  const std::vector<float> expected = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(x.grad().to_vector() == expected);
}

TEST_CASE("flexible_blend results do not depend on the thread count", "[flexible]") {
  Generator gen(7);
  const BlendCase k{{9, 1, 28, 28}, 12, {5, 1, 0}};
  const Shape out = out_shape(k);
  const Tensor x0 = Tensor::randn(k.x, gen), c0 = Tensor::randn(out, gen), dy = Tensor::randn(out, gen);
  const Tensor t0 = Tensor::randn({out[1], out[2], out[3]}, gen, 0.5f, 0.3f);
  std::vector<std::vector<float>> first;
  testing::with_one_then_two_threads([&](int threads) {
    Tensor x = x0.clone().requires_grad_(), c = c0.clone().requires_grad_(), t = t0.clone().requires_grad_();
    const Tensor y = ops::flexible_blend(c, x, t, FlexGate::threshold, 50.0f, k.pool);
    y.backward(dy);
    const std::vector<std::vector<float>> results = {y.to_vector(), x.grad().to_vector(), c.grad().to_vector(),
                                                     t.grad().to_vector()};
    if (threads == 1) first = results;
    for (size_t i = 0; i < results.size(); ++i) CHECK(bit_identical(first[i], results[i]));
  });
}

TEST_CASE("flexible_blend rejects mismatched branches, channels and gate shapes", "[flexible]") {
  const Tensor x = Tensor::zeros({2, 3, 8, 8});
  CHECK_THAT(error_message([&] {
               ops::flexible_blend(Tensor::zeros({2, 4, 6, 6}), x, Tensor::zeros({4, 6, 6}), FlexGate::threshold, 50,
                                   {3});
             }),
             Catch::Contains("3 channels") && Catch::Contains("4"));
  CHECK_THAT(error_message([&] {
               ops::flexible_blend(Tensor::zeros({2, 3, 7, 7}), x, Tensor::zeros({3, 7, 7}), FlexGate::threshold, 50,
                                   {3, 1, 0});
             }),
             Catch::Contains("6x6") && Catch::Contains("7x7"));
  CHECK_THAT(error_message([&] {
               ops::flexible_blend(Tensor::zeros({2, 3, 6, 6}), x, Tensor::zeros({3, 5, 6}), FlexGate::mask, 50, {3});
             }),
             Catch::Contains("mask") && Catch::Contains("[3, 5, 6]"));
}

TEST_CASE("FlexibleConv2d: parameter names per mode, thresholds and what is trained", "[flexible]") {
  Generator gen(8);
  auto names = [](const nn::NamedTensors& tensors) {
    std::vector<std::string> out;
    for (const auto& [name, t] : tensors) out.push_back(name);
    return out;
  };
  nn::FlexibleConv2dOptions o{.in_channels = 1, .out_channels = 12, .kernel = 5, .pool = {5}, .input_size = 28};
  nn::FlexibleConv2d standard(o, gen);
  CHECK(names(standard.named_parameters()) == std::vector<std::string>{"threshold", "conv.weight", "conv.bias"});
  CHECK(standard.threshold.shape() == Shape{12, 24, 24});
  CHECK(standard.threshold.requires_grad());
  const std::vector<float> t = standard.threshold.to_vector();
  const double mean = std::accumulate(t.begin(), t.end(), 0.0) / t.size();
  double var = 0;
  for (float v : t) var += (v - mean) * (v - mean);
  CHECK(mean == Approx(0.5).margin(0.01));
  CHECK(std::sqrt(var / t.size()) == Approx(0.1).margin(0.01));

  o.mode = nn::FlexMode::uniform;
  nn::FlexibleConv2d uniform(o, gen);
  CHECK(names(uniform.named_parameters()) == std::vector<std::string>{"conv.weight", "conv.bias"});
  CHECK(names(uniform.state()) == std::vector<std::string>{"threshold", "conv.weight", "conv.bias"});
  CHECK(uniform.threshold.to_vector() == std::vector<float>(12 * 24 * 24, 0.1f));

  o.mode = nn::FlexMode::standard;
  o.freeze_threshold = true;
  CHECK(names(nn::FlexibleConv2d(o, gen).named_parameters()) == std::vector<std::string>{"conv.weight", "conv.bias"});
  o.freeze_threshold = false;
  for (nn::FlexMode mode : {nn::FlexMode::random, nn::FlexMode::none}) {
    o.mode = mode;
    nn::FlexibleConv2d layer(o, gen);
    CHECK(names(layer.state()) == std::vector<std::string>{"conv.weight", "conv.bias"});
    CHECK_FALSE(layer.threshold.defined());
  }
  CHECK(nn::parse_flex_mode("reverse") == nn::FlexMode::reverse);
  CHECK(nn::flex_mode_name(nn::FlexMode::uniform) == "uniform");
  CHECK_THAT(error_message([] { nn::parse_flex_mode("sometimes"); }),
             Catch::Contains("sometimes") && Catch::Contains("standard"));
}

TEST_CASE("FlexibleConv2d: none is the convolution alone; standard blends the pool where it is below T",
          "[flexible]") {
  Generator gen(9);
  nn::FlexibleConv2dOptions o{.in_channels = 3, .out_channels = 3, .kernel = 3, .padding = 1,
                              .pool = {3, 1, 1}, .input_size = 6, .mode = nn::FlexMode::none};
  nn::FlexibleConv2d baseline(o, gen);
  const Tensor x = Tensor::rand({2, 3, 6, 6}, gen);
  CHECK(bit_identical(baseline(x).to_vector(),
                      ops::conv2d(x, baseline.conv->weight, baseline.conv->bias, 1, 1).to_vector()));

  o.mode = nn::FlexMode::standard;
  nn::FlexibleConv2d layer(o, gen);
  layer.eval();
  layer.count_pool_units(true);
  NoGradGuard no_grad;
  layer.threshold.fill_(10.0f);  // every pooled value (in [0, 1]) is far below T: all pool
  CHECK(bit_identical(layer(x).to_vector(), ops::max_pool2d(x, 3, 1, 1).to_vector()));
  CHECK(layer.pool_fraction() == 1.0);
  layer.reset_pool_fraction();
  layer.threshold.fill_(-10.0f);  // all convolution
  CHECK(bit_identical(layer(x).to_vector(), ops::conv2d(x, layer.conv->weight, layer.conv->bias, 1, 1).to_vector()));
  CHECK(layer.pool_fraction() == 0.0);
}

TEST_CASE("FlexibleConv2d random mode: a fresh mask per forward, shared over the batch, in evaluation too",
          "[flexible]") {
  Generator gen(10);
  nn::FlexibleConv2dOptions o{.in_channels = 1, .out_channels = 4, .kernel = 3, .pool = {3}, .input_size = 10,
                              .mode = nn::FlexMode::random};
  nn::FlexibleConv2d layer(o, gen);
  const Tensor one = Tensor::rand({1, 1, 10, 10}, gen);
  const Tensor batch = ops::concat({one, one});
  layer.eval();
  layer.count_pool_units(true);
  NoGradGuard no_grad;
  const std::vector<float> a = layer(batch).to_vector(), b = layer(batch).to_vector();
  CHECK_FALSE(bit_identical(a, b));  // a new mask each pass
  const size_t half = a.size() / 2;
  CHECK(std::equal(a.begin(), a.begin() + half, a.begin() + half));  // the same mask for both images
  // Each unit is exactly the pool or the convolution value, and about half take the pool.
  const std::vector<float> m = ops::max_pool2d(batch, 3, 1).to_vector();
  const std::vector<float> c = layer.conv->forward(batch).to_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    const size_t image = i / half, pos = i % 64;
    REQUIRE((a[i] == m[image * 64 + pos] || a[i] == c[i]));
  }
  CHECK(layer.pool_fraction() == Approx(0.5).margin(0.1));
  layer.reset_pool_fraction();
  layer.count_pool_units(false);
  (void)layer(batch);
  CHECK(std::isnan(layer.pool_fraction()));
  // Replaying the generator's state replays the mask.
  Generator replay(10);
  nn::FlexibleConv2d again(o, replay);
  (void)Tensor::rand({1, 1, 10, 10}, replay);
  again.eval();
  CHECK(again(batch).to_vector() == a);
  CHECK(again(batch).to_vector() == b);
}

TEST_CASE("FlexibleConv2d rejects channel counts, sizes and inputs it cannot handle", "[flexible]") {
  nn::FlexibleConv2dOptions o{.in_channels = 2, .out_channels = 3, .kernel = 3, .pool = {3}, .input_size = 8};
  CHECK_THAT(error_message([&] { nn::FlexibleConv2d layer(o); }), Catch::Contains("2 input channels") &&
                                                                      Catch::Contains("3 output channels"));
  o.in_channels = 3;
  o.pool = {2};
  CHECK_THAT(error_message([&] { nn::FlexibleConv2d layer(o); }),
             Catch::Contains("6x6") && Catch::Contains("7x7"));
  o.pool = {3, 1, 0};
  nn::FlexibleConv2d layer(o);
  CHECK_THAT(error_message([&] { layer(Tensor::zeros({1, 3, 9, 9})); }), Catch::Contains("[1, 3, 9, 9]"));
}

}  // namespace flexnn

namespace flexnn {

TEST_CASE("FlexibleConv2d gradients reach x through both branches, the weights and T", "[flexible]") {
  // The whole layer (convolution, then the fused blend) against finite differences: the input's
  // gradient is the sum of the convolution's and the pool's shares.
  Generator gen(11);
  for (nn::FlexMode mode : {nn::FlexMode::standard, nn::FlexMode::reverse, nn::FlexMode::uniform}) {
    CAPTURE(nn::flex_mode_name(mode));
    nn::FlexibleConv2d layer({.in_channels = 2, .out_channels = 2, .kernel = 3, .padding = 1, .pool = {3, 1, 1},
                              .input_size = 5, .mode = mode, .sharpness = 4.0f, .threshold_mean = 0.0f,
                              .threshold_std = 0.3f, .uniform_threshold = 0.1f},
                             gen);
    Tensor x = tie_free_input({2, 2, 5, 5}, gen).requires_grad_();
    std::vector<Tensor> inputs = {x, layer.conv->weight, layer.conv->bias};
    if (mode != nn::FlexMode::uniform) inputs.push_back(layer.threshold);
    testing::check_gradients([&](const std::vector<Tensor>& in) { return layer(in[0]); }, inputs);
  }
}

}  // namespace flexnn
