// Tests of the Winograd convolution (kernels/cpu/winograd.hpp) against direct convolution loops in
// double written here: forward (with bias), input and weight gradients for every tile size on odd
// plane sizes, 1x1 to 8x8 planes and a wide one, paddings 0..2 (also unequal), channel counts that
// are not multiples of 16, through the tiled path and the others; a batch split into groups
// against its halves, its images run one by one and a narrower layer through the tiled path, bit
// for bit (and the weight gradient against its halves); bit-identical results for any thread
// count; conv2d's dispatch to it on a deep shape; errors for bad shapes.
#include <algorithm>
#include <catch2/catch.hpp>

#include "random_values.hpp"
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.hpp"
#include "kernels/cpu/winograd.hpp"
#include "test_helpers.hpp"

namespace flexnn {
namespace {

using cpu::Conv2dShape;

using testing::random_values;

Conv2dShape conv3x3(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t pad_h, int64_t pad_w) {
  return {n, c_in, h, w, c_out, 3, 3, 1, 1, pad_h, pad_w, h + 2 * pad_h - 2, w + 2 * pad_w - 2};
}

// A direct result in double and, per element, the sum of |term| over its products: Winograd's
// rounding error is measured relative to it.
struct Direct {
  std::vector<double> value, magnitude;
};

// y[i, co, oh, ow] = b[co] + sum x[i, ci, oh - pad_h + ki, ow - pad_w + kj] w[co, ci, ki, kj].
Direct direct_forward(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& w,
                      const std::vector<float>& b) {
  Direct d{std::vector<double>(s.n * s.c_out * s.out_plane()), std::vector<double>(s.n * s.c_out * s.out_plane())};
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t co = 0; co < s.c_out; ++co)
      for (int64_t oh = 0; oh < s.out_h; ++oh)
        for (int64_t ow = 0; ow < s.out_w; ++ow) {
          double acc = b[co], mag = std::fabs(b[co]);
          for (int64_t ci = 0; ci < s.c_in; ++ci)
            for (int64_t ki = 0; ki < 3; ++ki)
              for (int64_t kj = 0; kj < 3; ++kj) {
                const int64_t ih = oh - s.pad_h + ki, iw = ow - s.pad_w + kj;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                const double p = static_cast<double>(x[((i * s.c_in + ci) * s.h + ih) * s.w + iw]) *
                                 w[((co * s.c_in + ci) * 3 + ki) * 3 + kj];
                acc += p;
                mag += std::fabs(p);
              }
          const int64_t at = ((i * s.c_out + co) * s.out_h + oh) * s.out_w + ow;
          d.value[at] = acc;
          d.magnitude[at] = mag;
        }
  return d;
}

// dx[i, ci, ih, iw] = sum dy[i, co, ih + pad_h - ki, iw + pad_w - kj] w[co, ci, ki, kj].
Direct direct_backward_input(const Conv2dShape& s, const std::vector<float>& dy, const std::vector<float>& w) {
  Direct d{std::vector<double>(s.n * s.c_in * s.h * s.w), std::vector<double>(s.n * s.c_in * s.h * s.w)};
  for (int64_t i = 0; i < s.n; ++i)
    for (int64_t ci = 0; ci < s.c_in; ++ci)
      for (int64_t ih = 0; ih < s.h; ++ih)
        for (int64_t iw = 0; iw < s.w; ++iw) {
          double acc = 0, mag = 0;
          for (int64_t co = 0; co < s.c_out; ++co)
            for (int64_t ki = 0; ki < 3; ++ki)
              for (int64_t kj = 0; kj < 3; ++kj) {
                const int64_t oh = ih + s.pad_h - ki, ow = iw + s.pad_w - kj;
                if (oh < 0 || oh >= s.out_h || ow < 0 || ow >= s.out_w) continue;
                const double p = static_cast<double>(dy[((i * s.c_out + co) * s.out_h + oh) * s.out_w + ow]) *
                                 w[((co * s.c_in + ci) * 3 + ki) * 3 + kj];
                acc += p;
                mag += std::fabs(p);
              }
          const int64_t at = ((i * s.c_in + ci) * s.h + ih) * s.w + iw;
          d.value[at] = acc;
          d.magnitude[at] = mag;
        }
  return d;
}

// dw[co, ci, ki, kj] = sum dy[i, co, oh, ow] x[i, ci, oh - pad_h + ki, ow - pad_w + kj]. Winograd
// computes a (co, ci) pair's nine taps together from the same tiles, so its error scales with
// the pair's products over all taps: every tap gets that sum as its magnitude (a tap that only
// ever reads padding is exactly 0 directly but rounding noise through Winograd).
Direct direct_backward_weight(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& dy) {
  Direct d{std::vector<double>(s.c_out * s.c_in * 9), std::vector<double>(s.c_out * s.c_in * 9)};
  for (int64_t co = 0; co < s.c_out; ++co)
    for (int64_t ci = 0; ci < s.c_in; ++ci) {
      double pair = 0;
      for (int64_t k = 0; k < 9; ++k) {
        double acc = 0;
        for (int64_t i = 0; i < s.n; ++i)
          for (int64_t oh = 0; oh < s.out_h; ++oh)
            for (int64_t ow = 0; ow < s.out_w; ++ow) {
              const int64_t ih = oh - s.pad_h + k / 3, iw = ow - s.pad_w + k % 3;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              const double p = static_cast<double>(dy[((i * s.c_out + co) * s.out_h + oh) * s.out_w + ow]) *
                               x[((i * s.c_in + ci) * s.h + ih) * s.w + iw];
              acc += p;
              pair += std::fabs(p);
            }
        d.value[(co * s.c_in + ci) * 9 + k] = acc;
      }
      std::fill_n(d.magnitude.begin() + (co * s.c_in + ci) * 9, 9, pair);
    }
  return d;
}

// Tolerance on |result - direct| / (sum of |products|) for tiles of m. Float32 rounding alone
// gives ~1e-7 (m = 2, whose transforms only add and halve). Larger tiles interpolate at +-2, so
// the transforms scale values by up to 8 (A^T) and 1/24 (G) and mix a whole (m+2)^2 patch into
// every output of a tile: the error grows with m (Lavin & Gray 2016; Barabasz et al. 2020,
// "Error analysis and improving the accuracy of Winograd convolution"), and at a tile's corner the
// patch can hold many more products than the output's own window, the normaliser. Measured maxima
// over these shapes (forward, input and weight gradients): 2.2e-7 (m = 2), 9.3e-7 (m = 3), 1.0e-5
// (m = 4, the input gradient of an unpadded 8x8 plane); a coefficient off by 0.03 % fails, and a
// wrong index gives errors of order 1.
double tolerance(int m) { return m == 2 ? 2e-6 : m == 3 ? 1e-5 : 5e-5; }

void check_close(const std::vector<float>& got, const Direct& want, double tol) {
  REQUIRE(got.size() == want.value.size());
  double worst = 0;
  int64_t unwritten = 0;  // outputs start as NaN, so every element must have been written
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) ++unwritten;
    worst = std::max(worst, std::fabs(got[i] - want.value[i]) / std::max(want.magnitude[i], 1e-30));
  }
  CHECK(unwritten == 0);
  INFO("worst relative error " << worst);
  CHECK(worst <= tol);
}

const std::vector<Conv2dShape> kShapes = {
    conv3x3(3, 5, 7, 9, 6, 1, 1),      // odd plane, few channels
    conv3x3(2, 17, 3, 3, 19, 1, 1),    // 3x3 plane (VGG block 5)
    conv3x3(1, 33, 8, 8, 20, 0, 0),    // 8x8, no padding (6x6 out, input gradient padded by 2)
    conv3x3(2, 70, 1, 1, 18, 1, 1),    // 1x1 plane: only the centre tap is inside
    conv3x3(2, 20, 2, 2, 35, 2, 2),    // 2x2 plane, padding 2 (4x4 out)
    conv3x3(2, 40, 5, 11, 24, 0, 2),   // unequal padding
    conv3x3(1, 130, 7, 7, 48, 1, 1),   // 7x7 plane, channels past a multiple of 16
    conv3x3(1, 6, 5, 71, 5, 1, 1),     // wide plane: more tiles to a tile row than a vector pair holds
    conv3x3(1, 560, 3, 3, 480, 1, 1),  // a transformed weight too large for the tiled path
};

TEST_CASE("winograd forward and input gradient match direct loops for every tile size", "[winograd]") {
  int tiled = 0, other = 0;
  for (const Conv2dShape& s : kShapes)
    for (int m = 2; m <= 4; ++m) {
      INFO("c_in " << s.c_in << " plane " << s.h << "x" << s.w << " c_out " << s.c_out << " pad " << s.pad_h << ","
                   << s.pad_w << " m " << m << " tiled " << cpu::winograd_tiled(s, m));
      ++(cpu::winograd_tiled(s, m) ? tiled : other);
      const std::vector<float> x = random_values(s.n * s.c_in * s.h * s.w, 1);
      const std::vector<float> w = random_values(s.c_out * s.c_in * 9, 2);
      const std::vector<float> b = random_values(s.c_out, 3);
      const std::vector<float> dy = random_values(s.n * s.c_out * s.out_plane(), 4);
      std::vector<float> y(dy.size(), std::numeric_limits<float>::quiet_NaN());
      std::vector<float> dx(x.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::winograd_forward(s, m, x.data(), w.data(), b.data(), y.data());
      check_close(y, direct_forward(s, x, w, b), tolerance(m));
      cpu::winograd_backward_input(s, m, dy.data(), w.data(), dx.data());
      check_close(dx, direct_backward_input(s, dy, w), tolerance(m));
      std::vector<float> dw(w.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::winograd_backward_weight(s, m, x.data(), dy.data(), dw.data());
      check_close(dw, direct_backward_weight(s, x, dy), tolerance(m));
    }
  CHECK(tiled == 3 * (static_cast<int>(kShapes.size()) - 1));
  CHECK(other == 3);
}

TEST_CASE("winograd's grouped, fused and tiled paths give the same bits", "[winograd]") {
  // 330 images of 2048 channels at 3x3 into 96: the transformed weight is too large for the tiled
  // path, and the batch makes two groups (kGroupFloats) of tile counts that are not multiples of
  // 16. Its halves make one group each (the input gradient's, whose transformed input is small,
  // take the fused path), and a single image takes the fused path (its weight transformed block by
  // block, each block multiplied at once). Each GEMM's sums depend on its inner size only and each
  // output channel is a sum of its own, so the batch must match its halves and its images bit for
  // bit, and its first 16 output channels a 16-channel layer's, which goes through the tiled path
  // (for the input gradient, its first 16 input channels). The batch runs with one and with two
  // threads.
  const Conv2dShape s = conv3x3(330, 2048, 3, 3, 96, 1, 1);
  Conv2dShape half = s, one = s, narrow_out = s, narrow_in = s;
  half.n = s.n / 2;
  one.n = 1;
  narrow_out.c_out = narrow_in.c_in = 16;
  const int64_t in_image = s.c_in * s.h * s.w, out_plane = s.out_plane(), out_image = s.c_out * out_plane;
  const std::vector<float> x = random_values(s.n * in_image, 5), w = random_values(s.c_out * s.c_in * 9, 6);
  const std::vector<float> b = random_values(s.c_out, 7), dy = random_values(s.n * out_image, 8);
  std::vector<float> w_narrow_in(s.c_out * 16 * 9);  // w[o][i] for i < 16
  for (int64_t o = 0; o < s.c_out; ++o)
    std::copy_n(w.begin() + o * s.c_in * 9, 16 * 9, w_narrow_in.begin() + o * 16 * 9);
  for (int m : {3, 4}) {
    INFO("m " << m);
    CHECK(!cpu::winograd_tiled(s, m));
    CHECK(cpu::winograd_tiled(narrow_out, m));
    CHECK(cpu::winograd_tiled(narrow_in, m));
    std::vector<float> y(s.n * out_image), dx(s.n * in_image), y_one_thread(y.size()), dx_one_thread(dx.size());
    testing::with_one_then_two_threads([&](int threads) {
      cpu::winograd_forward(s, m, x.data(), w.data(), b.data(), y.data());
      cpu::winograd_backward_input(s, m, dy.data(), w.data(), dx.data());
      if (threads == 1) {
        y_one_thread = y;
        dx_one_thread = dx;
      }
    });
    CHECK(testing::bit_identical(y, y_one_thread));
    CHECK(testing::bit_identical(dx, dx_one_thread));
    std::vector<float> y_parts(y.size()), dx_parts(dx.size());
    for (int64_t first : {int64_t{0}, half.n}) {
      cpu::winograd_forward(half, m, x.data() + first * in_image, w.data(), b.data(),
                            y_parts.data() + first * out_image);
      cpu::winograd_backward_input(half, m, dy.data() + first * out_image, w.data(),
                                   dx_parts.data() + first * in_image);
    }
    CHECK(testing::bit_identical(y, y_parts));
    CHECK(testing::bit_identical(dx, dx_parts));
    for (int64_t i : {int64_t{0}, int64_t{200}, s.n - 1}) {
      INFO("image " << i);
      std::vector<float> y_one(out_image), dx_one(in_image);
      cpu::winograd_forward(one, m, x.data() + i * in_image, w.data(), b.data(), y_one.data());
      cpu::winograd_backward_input(one, m, dy.data() + i * out_image, w.data(), dx_one.data());
      const auto image_of = [i](const std::vector<float>& batch, int64_t size) {
        return std::vector<float>(batch.begin() + i * size, batch.begin() + (i + 1) * size);
      };
      CHECK(testing::bit_identical(y_one, image_of(y, out_image)));
      CHECK(testing::bit_identical(dx_one, image_of(dx, in_image)));
    }
    std::vector<float> y_narrow(s.n * 16 * out_plane), dx_narrow(s.n * 16 * s.h * s.w);
    cpu::winograd_forward(narrow_out, m, x.data(), w.data(), b.data(), y_narrow.data());
    cpu::winograd_backward_input(narrow_in, m, dy.data(), w_narrow_in.data(), dx_narrow.data());
    std::vector<float> y_first(y_narrow.size()), dx_first(dx_narrow.size());  // the batch's first 16 channels
    for (int64_t i = 0; i < s.n; ++i) {
      std::copy_n(y.begin() + i * out_image, 16 * out_plane, y_first.begin() + i * 16 * out_plane);
      std::copy_n(dx.begin() + i * in_image, 16 * s.h * s.w, dx_first.begin() + i * 16 * s.h * s.w);
    }
    CHECK(testing::bit_identical(y_narrow, y_first));
    CHECK(testing::bit_identical(dx_narrow, dx_first));
  }
}

TEST_CASE("winograd weight gradient sums its groups in order", "[winograd]") {
  // The same 60 images make two groups; the weight gradient of the batch must equal the first
  // group's gradient plus the second's, each summed over the group's tiles by the GEMM, to
  // within rounding, and the batch's direct sum within the tolerance.
  const Conv2dShape s = conv3x3(60, 64, 30, 30, 64, 1, 1);
  const std::vector<float> x = random_values(s.n * s.c_in * s.h * s.w, 15);
  const std::vector<float> dy = random_values(s.n * s.c_out * s.out_plane(), 16);
  for (int m : {3, 4}) {
    INFO("m " << m);
    std::vector<float> dw(s.c_out * s.c_in * 9), part(dw.size()), halves(dw.size(), 0.0f);
    cpu::winograd_backward_weight(s, m, x.data(), dy.data(), dw.data());
    for (int64_t first : {int64_t{0}, int64_t{30}}) {
      Conv2dShape half = s;
      half.n = 30;
      cpu::winograd_backward_weight(half, m, x.data() + first * s.c_in * s.h * s.w,
                                    dy.data() + first * s.c_out * s.out_plane(), part.data());
      for (std::size_t i = 0; i < dw.size(); ++i) halves[i] += part[i];
    }
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < dw.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(dw[i] - halves[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(halves[i])));
    }
    CHECK(scale > 1.0);
    CHECK(worst <= 1e-5 * scale);
  }
}

TEST_CASE("winograd is bit-identical for any thread count", "[winograd]") {
  // The first shape goes through the tiled path, the second (a large transformed weight, few tiles)
  // through the fused one.
  for (const Conv2dShape& s : {conv3x3(5, 72, 9, 9, 40, 1, 1), conv3x3(2, 560, 3, 3, 480, 1, 1)})
    for (int m = 2; m <= 4; ++m) {
      INFO("c_in " << s.c_in << " m " << m);
      const std::vector<float> x = random_values(s.n * s.c_in * s.h * s.w, 8);
      const std::vector<float> w = random_values(s.c_out * s.c_in * 9, 9);
      const std::vector<float> dy = random_values(s.n * s.c_out * s.out_plane(), 10);
      std::vector<float> y[2], dx[2], dw[2];
      testing::with_one_then_two_threads([&](int threads) {
        y[threads - 1].resize(dy.size());
        dx[threads - 1].resize(x.size());
        dw[threads - 1].resize(w.size());
        cpu::winograd_forward(s, m, x.data(), w.data(), nullptr, y[threads - 1].data());
        cpu::winograd_backward_input(s, m, dy.data(), w.data(), dx[threads - 1].data());
        cpu::winograd_backward_weight(s, m, x.data(), dy.data(), dw[threads - 1].data());
      });
      CHECK(testing::bit_identical(y[0], y[1]));
      CHECK(testing::bit_identical(dx[0], dx[1]));
      CHECK(testing::bit_identical(dw[0], dw[1]));
    }
}

TEST_CASE("conv2d of a deep 3x3 stride-1 shape goes through winograd and stays accurate", "[winograd]") {
  // 64+ channels on a 7x7 plane: the dispatch takes Winograd F(4x4) for both passes.
  const Conv2dShape s = conv3x3(2, 64, 7, 7, 72, 1, 1);
  const std::vector<float> x = random_values(s.n * s.c_in * s.h * s.w, 11), w = random_values(s.c_out * s.c_in * 9, 12);
  const std::vector<float> b = random_values(s.c_out, 13), dy = random_values(s.n * s.c_out * s.out_plane(), 14);
  std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), y_wino(dy.size()), dx_wino(x.size()), dw_wino(w.size());
  cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
  cpu::conv2d_backward_input(s, dy.data(), w.data(), dx.data());
  cpu::conv2d_backward_weight(s, x.data(), dy.data(), dw.data());
  cpu::winograd_forward(s, 4, x.data(), w.data(), b.data(), y_wino.data());
  cpu::winograd_backward_input(s, 4, dy.data(), w.data(), dx_wino.data());
  cpu::winograd_backward_weight(s, 4, x.data(), dy.data(), dw_wino.data());
  CHECK(testing::bit_identical(y, y_wino));
  CHECK(testing::bit_identical(dx, dx_wino));
  CHECK(testing::bit_identical(dw, dw_wino));
  check_close(y, direct_forward(s, x, w, b), tolerance(4));
  check_close(dx, direct_backward_input(s, dy, w), tolerance(4));
  check_close(dw, direct_backward_weight(s, x, dy), tolerance(4));
}

TEST_CASE("winograd rejects shapes it cannot serve and unknown tile sizes", "[winograd]") {
  std::vector<float> buffer(4096);
  Conv2dShape five = conv3x3(1, 2, 6, 6, 2, 1, 1);
  five.kh = five.kw = 5;
  five.out_h = five.out_w = 4;
  CHECK(!cpu::winograd_fits(five));
  CHECK_THAT(testing::error_message([&] {
               cpu::winograd_forward(five, 4, buffer.data(), buffer.data(), nullptr, buffer.data());
             }),
             Catch::Contains("expected a 3x3 kernel") && Catch::Contains("found a 5x5 kernel"));
  Conv2dShape strided = conv3x3(1, 2, 6, 6, 2, 1, 1);
  strided.stride_h = 2;
  strided.out_h = 3;
  CHECK(!cpu::winograd_fits(strided));
  CHECK_THAT(testing::error_message([&] {
               cpu::winograd_backward_input(strided, 2, buffer.data(), buffer.data(), buffer.data());
             }),
             Catch::Contains("stride (2, 1)"));
  const Conv2dShape fine = conv3x3(1, 2, 6, 6, 2, 1, 1);
  CHECK(cpu::winograd_fits(fine));
  CHECK_THAT(testing::error_message([&] {
               cpu::winograd_forward(fine, 6, buffer.data(), buffer.data(), nullptr, buffer.data());
             }),
             Catch::Contains("expected output tiles of 2, 3 or 4, found 6"));
  Conv2dShape wrong_out = fine;
  wrong_out.out_w = 5;
  CHECK_THAT(testing::error_message([&] {
               cpu::winograd_backward_weight(wrong_out, 4, buffer.data(), buffer.data(), buffer.data());
             }),
             Catch::Contains("expected a 6x6 output for a 6x6 input with padding (1, 1), found 6x5"));
  Conv2dShape too_small = conv3x3(1, 2, 1, 1, 2, 0, 0);
  CHECK_THAT(testing::error_message([&] {
               cpu::winograd_forward(too_small, 2, buffer.data(), buffer.data(), nullptr, buffer.data());
             }),
             Catch::Contains("at least as large as the 3x3 kernel once padded, found 1x1 with padding (0, 0)"));
}

}  // namespace
}  // namespace flexnn
