// Tests of the direct one-input-channel, stride-1 convolution (kernels/cpu/conv2d_direct.hpp):
// values against a double-precision loop over many shapes (paddings, kernels, channel counts
// around its register block, widths around its vector width), thread-count determinism, that
// ops::conv2d takes this path at the FMNIST flexible layer's shape, and errors on shapes it does
// not serve.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "kernels/cpu/conv2d_direct.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using cpu::Conv2dShape;

Conv2dShape direct_shape(int64_t n, int64_t h, int64_t w, int64_t c_out, int64_t kh, int64_t kw, int64_t pad_h,
                         int64_t pad_w) {
  return {n, 1, h, w, c_out, kh, kw, 1, 1, pad_h, pad_w, h + 2 * pad_h - kh + 1, w + 2 * pad_w - kw + 1};
}

std::vector<float> random_values(int64_t count, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn({count}, gen).to_vector();
}

struct Inputs {
  std::vector<float> x, w, b;
};

Inputs random_inputs(const Conv2dShape& s, uint64_t seed) {
  return {random_values(s.n * s.h * s.w, seed), random_values(s.c_out * s.kh * s.kw, seed + 1),
          random_values(s.c_out, seed + 2)};
}

std::vector<float> run_direct(const Conv2dShape& s, const Inputs& in, bool bias) {
  std::vector<float> y(static_cast<std::size_t>(s.n * s.c_out * s.out_plane()), std::nanf(""));
  cpu::conv2d_direct_forward(s, in.x.data(), in.w.data(), bias ? in.b.data() : nullptr, y.data());
  return y;
}

// Every output against the definition in double, within 1e-5 of the sum of |terms| (bias included).
void check_against_definition(const Conv2dShape& s, const Inputs& in, bool bias, const std::vector<float>& y) {
  int mismatches = 0;
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t co = 0; co < s.c_out; ++co)
      for (int64_t oh = 0; oh < s.out_h; ++oh)
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          double sum = bias ? in.b[co] : 0.0, magnitude = std::abs(sum);
          for (int64_t ki = 0; ki < s.kh; ++ki)
            for (int64_t kj = 0; kj < s.kw; ++kj) {
              const int64_t ih = oh - s.pad_h + ki, iw = ow - s.pad_w + kj;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              const double term = static_cast<double>(in.x[(i * s.h + ih) * s.w + iw]) * in.w[(co * s.kh + ki) * s.kw + kj];
              sum += term;
              magnitude += std::abs(term);
            }
          const double got = y[((i * s.c_out + co) * s.out_h + oh) * s.out_w + ow];
          if (!(std::abs(got - sum) <= 1e-5 * magnitude + 1e-30)) {
            if (++mismatches <= 5)
              FAIL_CHECK("image " << i << " channel " << co << " output (" << oh << ", " << ow << "): got " << got
                                  << ", expected " << sum);
          }
        }
  CHECK(mismatches == 0);
}

TEST_CASE("direct convolution matches the definition", "[conv]") {
  struct Case {
    int64_t n, h, w, c_out, kh, kw, pad_h, pad_w;
  };
  const std::vector<Case> cases = {
      {7, 28, 28, 12, 5, 5, 0, 0},   // the FMNIST flexible layer (smaller batch)
      {1, 28, 28, 12, 5, 5, 2, 2},   // "same" padding
      {7, 13, 11, 5, 3, 3, 1, 1},    // odd sizes, a partial channel block
      {1, 9, 6, 1, 3, 3, 0, 0},      // output narrower than a vector, one channel
      {3, 17, 40, 20, 5, 5, 2, 2},   // wider than two vectors, 12 + 8 channels
      {2, 19, 23, 33, 7, 7, 1, 2},   // 7x7, 33 = 2 x 12 + 9 channels, unequal padding
      {1, 7, 7, 12, 7, 7, 0, 0},     // a 1x1 output
      {2, 5, 31, 12, 3, 7, 2, 0},    // rectangular kernel, one output row wider than a block
      {7, 6, 3, 5, 3, 3, 2, 2},      // padding larger than the image's border
  };
  for (const Case& c : cases) {
    const Conv2dShape s = direct_shape(c.n, c.h, c.w, c.c_out, c.kh, c.kw, c.pad_h, c.pad_w);
    REQUIRE(cpu::conv2d_direct_fits(s));
    for (bool bias : {true, false}) {
      INFO("x [" << c.n << ", 1, " << c.h << ", " << c.w << "], " << c.c_out << " out, " << c.kh << "x" << c.kw
                 << " kernel, padding (" << c.pad_h << ", " << c.pad_w << "), bias " << bias);
      const Inputs in = random_inputs(s, static_cast<uint64_t>(c.h * 1000 + c.w * 10 + c.c_out));
      check_against_definition(s, in, bias, run_direct(s, in, bias));
    }
  }
}

TEST_CASE("direct convolution is bit-identical for any thread count", "[conv]") {
  const Conv2dShape s = direct_shape(23, 28, 28, 12, 5, 5, 1, 1);
  const Inputs in = random_inputs(s, 7);
  std::vector<float> runs[2];
  testing::with_one_then_two_threads([&](int threads) { runs[threads - 1] = run_direct(s, in, true); });
  CHECK(testing::bit_identical(runs[0], runs[1]));
}

TEST_CASE("conv2d takes the direct path at the FMNIST flexible layer's shape", "[conv]") {
  Generator gen(11);
  const Tensor x = Tensor::randn({100, 1, 28, 28}, gen), w = Tensor::randn({12, 1, 5, 5}, gen),
               b = Tensor::randn({12}, gen);
  const Conv2dShape s = direct_shape(100, 28, 28, 12, 5, 5, 0, 0);
  if (!cpu::conv2d_direct_pays(s)) {
    WARN("built without AVX: conv2d does not take the direct path");
    return;
  }
  const Inputs in{x.to_vector(), w.to_vector(), b.to_vector()};
  const std::vector<float> direct = run_direct(s, in, true);
  CHECK(testing::bit_identical(ops::conv2d(x, w, b).to_vector(), direct));
  check_against_definition(s, in, true, direct);
}

TEST_CASE("direct convolution rejects shapes it does not serve", "[conv]") {
  const std::vector<float> buffer(4096, 0.0f);
  std::vector<float> y(4096);
  const auto run = [&](const Conv2dShape& s) {
    return testing::error_message(
        [&] { cpu::conv2d_direct_forward(s, buffer.data(), buffer.data(), nullptr, y.data()); });
  };
  Conv2dShape two_channels = direct_shape(1, 8, 8, 4, 3, 3, 0, 0);
  two_channels.c_in = 2;
  CHECK_THAT(run(two_channels), Catch::Contains("expected 1 input channel") && Catch::Contains("found 2 input"));
  Conv2dShape strided = direct_shape(1, 8, 8, 4, 3, 3, 0, 0);
  strided.stride_w = 2;
  CHECK_THAT(run(strided), Catch::Contains("stride (1, 2)"));
  CHECK_THAT(run(direct_shape(1, 16, 16, 4, 9, 9, 0, 0)), Catch::Contains("a 9x9 kernel"));
  Conv2dShape wrong_output = direct_shape(1, 8, 8, 4, 3, 3, 1, 1);
  wrong_output.out_w = 6;
  CHECK_THAT(run(wrong_output), Catch::Contains("expected a 8x8 output") && Catch::Contains("found 8x6"));
}

}  // namespace
}  // namespace flexnn
