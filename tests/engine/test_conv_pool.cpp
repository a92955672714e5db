// Tests of conv2d, max_pool2d and avg_pool2d: forward values and gradients against direct loops
// written here from the definitions (torch's window and divisor rules), finite-difference
// gradient checks, ceil_mode output sizes, tie and NaN handling, thread-count determinism, errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "gradcheck.hpp"
#include "test_helpers.hpp"
#include "kernels/cpu/parallel.hpp"

namespace flexnn {
namespace {

using ops::Size2;
using testing::bit_identical;
using testing::error_message;
using testing::with_one_then_two_threads;

// conv2d and avg_pool2d are linear in each input, so central differences are exact for any step:
// a larger step keeps float32 rounding in the outputs well below the tolerance.
const testing::GradcheckOptions kLinearGradcheck{.eps = 1e-2};

struct ConvCase {
  Shape x, w;
  bool bias;
  Size2 stride, padding;
};

// Direct convolution in double: y[n, co, oh, ow] = b[co] + sum x[n, ci, ih, iw] w[co, ci, ki, kj].
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, Size2 stride, Size2 pad,
                               Shape& out_shape) {
  const int64_t n = x.size(0), ci_count = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t co_count = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t oh_count = (h + 2 * pad.h - kh) / stride.h + 1, ow_count = (wd + 2 * pad.w - kw) / stride.w + 1;
  out_shape = {n, co_count, oh_count, ow_count};
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  const std::vector<float> bv = b.defined() ? b.to_vector() : std::vector<float>(co_count, 0.0f);
  std::vector<double> y(shape_numel(out_shape));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t co = 0; co < co_count; ++co)
      for (int64_t oh = 0; oh < oh_count; ++oh)
        for (int64_t ow = 0; ow < ow_count; ++ow) {
          double acc = bv[co];
          for (int64_t ci = 0; ci < ci_count; ++ci)
            for (int64_t ki = 0; ki < kh; ++ki)
              for (int64_t kj = 0; kj < kw; ++kj) {
                const int64_t ih = oh * stride.h - pad.h + ki, iw = ow * stride.w - pad.w + kj;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += static_cast<double>(xv[((i * ci_count + ci) * h + ih) * wd + iw]) *
                       wv[((co * ci_count + ci) * kh + ki) * kw + kj];
              }
          y[((i * co_count + co) * oh_count + oh) * ow_count + ow] = acc;
        }
  return y;
}

// Direct gradients in double, by scattering every product of the forward loop:
// dx[n, ci, ih, iw] += dy[n, co, oh, ow] w[co, ci, ki, kj], dw[co, ci, ki, kj] += dy[n, co, oh, ow] x[n, ci, ih, iw].
struct NaiveConvGrads {
  std::vector<double> dx, dw;
};

NaiveConvGrads naive_conv_grads(const Tensor& x, const Tensor& w, const Tensor& dy, Size2 stride, Size2 pad) {
  const int64_t n = x.size(0), ci_count = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t co_count = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t oh_count = dy.size(2), ow_count = dy.size(3);
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector(), dyv = dy.to_vector();
  NaiveConvGrads g{std::vector<double>(xv.size(), 0.0), std::vector<double>(wv.size(), 0.0)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t co = 0; co < co_count; ++co)
      for (int64_t oh = 0; oh < oh_count; ++oh)
        for (int64_t ow = 0; ow < ow_count; ++ow) {
          const double d = dyv[((i * co_count + co) * oh_count + oh) * ow_count + ow];
          for (int64_t ci = 0; ci < ci_count; ++ci)
            for (int64_t ki = 0; ki < kh; ++ki)
              for (int64_t kj = 0; kj < kw; ++kj) {
                const int64_t ih = oh * stride.h - pad.h + ki, iw = ow * stride.w - pad.w + kj;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const int64_t xi = ((i * ci_count + ci) * h + ih) * wd + iw,
                              wi = ((co * ci_count + ci) * kh + ki) * kw + kj;
                g.dx[xi] += d * wv[wi];
                g.dw[wi] += d * xv[xi];
              }
        }
  return g;
}

// Elements agree within tolerance x (1 + the largest |expected|): float sums of many terms err in
// proportion to the terms' scale, not to a result that cancels to near zero.
void check_close(const std::vector<float>& actual, const std::vector<double>& expected, double tolerance) {
  REQUIRE(actual.size() == expected.size());
  double scale = 1.0;
  for (double e : expected) scale = std::max(scale, 1.0 + std::abs(e));
  int mismatches = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::abs(actual[i] - expected[i]) > tolerance * scale) {
      if (++mismatches <= 5) FAIL_CHECK("element " << i << ": got " << actual[i] << ", expected " << expected[i]);
    }
  }
  CHECK(mismatches == 0);
}

struct PoolCase {
  Shape x;
  Size2 kernel, stride, padding;
  bool ceil_mode;
};

// Pool outputs and gradients computed from the definitions: window position (ki, kj) of output
// (oh, ow) reads input (oh * stride - pad + ki, ow * stride - pad + kj). The max takes the first
// largest value in row-major order; the average divides by the positions inside the padded input
// (count_include_pad) or inside the input.
struct NaivePool {
  Shape out_shape;
  std::vector<double> max, avg;
  std::vector<double> max_grad, avg_grad;  // for the output gradient dy
};

NaivePool naive_pool(const Tensor& x, const PoolCase& c, int64_t out_h, int64_t out_w, bool count_include_pad,
                     const std::vector<float>& dy) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const std::vector<float> xv = x.to_vector();
  NaivePool r;
  r.out_shape = {x.size(0), x.size(1), out_h, out_w};
  r.max.resize(planes * out_h * out_w);
  r.avg.resize(planes * out_h * out_w);
  r.max_grad.assign(xv.size(), 0.0);
  r.avg_grad.assign(xv.size(), 0.0);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < out_h; ++oh)
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const int64_t o = (p * out_h + oh) * out_w + ow;
        double sum = 0, best = 0;
        int64_t best_at = -1, inside = 0, inside_padded = 0;
        std::vector<int64_t> positions;
        for (int64_t ki = 0; ki < c.kernel.h; ++ki)
          for (int64_t kj = 0; kj < c.kernel.w; ++kj) {
            const int64_t ih = oh * c.stride.h - c.padding.h + ki, iw = ow * c.stride.w - c.padding.w + kj;
            if (ih < h + c.padding.h && iw < w + c.padding.w) ++inside_padded;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            const int64_t at = (p * h + ih) * w + iw;
            positions.push_back(at);
            ++inside;
            sum += xv[at];
            if (best_at < 0 || xv[at] > best) best = xv[at], best_at = at;
          }
        const double divisor = static_cast<double>(count_include_pad ? inside_padded : inside);
        r.max[o] = best;
        r.avg[o] = sum / divisor;
        r.max_grad[best_at] += dy[o];
        for (int64_t at : positions) r.avg_grad[at] += dy[o] / divisor;
      }
  return r;
}

// The gradients of every input that requires grad after backward(dy) through f.
std::vector<std::vector<float>> gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                          std::vector<Tensor> inputs, const Tensor& dy) {
  for (Tensor& t : inputs)
    if (t.requires_grad()) t.set_grad(Tensor());
  f(inputs).backward(dy);
  std::vector<std::vector<float>> grads;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) grads.push_back(t.grad().to_vector());
  return grads;
}

// conv2d's output and input, weight and bias gradients against the direct loops, for one case.
void check_against_loops(const ConvCase& c, Generator& gen) {
  CAPTURE(shape_str(c.x), shape_str(c.w));
  Tensor x = Tensor::randn(c.x, gen).requires_grad_();
  Tensor w = Tensor::randn(c.w, gen, 0.0f, 0.1f).requires_grad_();
  Tensor b = c.bias ? Tensor::randn({c.w[0]}, gen).requires_grad_() : Tensor();
  Tensor y = ops::conv2d(x, w, b, c.stride, c.padding);
  Shape expected_shape;
  const std::vector<double> expected = naive_conv(x, w, b, c.stride, c.padding, expected_shape);
  REQUIRE(y.shape() == expected_shape);
  check_close(y.to_vector(), expected, 1e-5);
  Tensor dy = Tensor::randn(y.shape(), gen);
  y.backward(dy);
  const NaiveConvGrads grads = naive_conv_grads(x, w, dy, c.stride, c.padding);
  check_close(x.grad().to_vector(), grads.dx, 1e-5);
  check_close(w.grad().to_vector(), grads.dw, 1e-5);
  if (c.bias) {
    const std::vector<float> dyv = dy.to_vector();
    const int64_t planes = y.size(0) * y.size(1), plane = y.size(2) * y.size(3);
    std::vector<double> db(c.w[0], 0.0);
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t q = 0; q < plane; ++q) db[p % c.w[0]] += dyv[p * plane + q];
    check_close(b.grad().to_vector(), db, 1e-5);
  }
}

}  // namespace

TEST_CASE("conv2d forward matches a direct loop", "[conv]") {
  Generator gen(7);
  const std::vector<ConvCase> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, true, 1, 1},
      {{3, 2, 9, 8}, {5, 2, 3, 2}, false, {2, 1}, {1, 0}},
      {{2, 4, 5, 5}, {3, 4, 1, 1}, true, 1, 0},             // pointwise fast path
      {{1, 3, 8, 10}, {2, 3, 5, 3}, true, {3, 2}, {2, 1}},  // one image: serial over images
      {{4, 1, 28, 28}, {12, 1, 5, 5}, true, 1, 0},          // the Fashion-MNIST layer, smaller batch
      {{2, 3, 4, 4}, {2, 3, 4, 4}, true, 2, 0},             // kernel = input: a 1x1 output
      {{3, 2, 48, 48}, {3, 2, 3, 3}, true, 1, 1},           // large images: one per group
      {{3, 3, 46, 46}, {4, 3, 1, 1}, false, 1, 0},          // ... pointwise, read in place
  };
  for (const ConvCase& c : cases) {
    CAPTURE(shape_str(c.x), shape_str(c.w), c.stride.h, c.stride.w, c.padding.h, c.padding.w);
    Tensor x = Tensor::randn(c.x, gen), w = Tensor::randn(c.w, gen);
    Tensor b = c.bias ? Tensor::randn({c.w[0]}, gen) : Tensor();
    Tensor y = ops::conv2d(x, w, b, c.stride, c.padding);
    Shape expected_shape;
    const std::vector<double> expected = naive_conv(x, w, b, c.stride, c.padding, expected_shape);
    REQUIRE(y.shape() == expected_shape);
    check_close(y.to_vector(), expected, 1e-5);
  }
}

TEST_CASE("conv2d gradients pass finite-difference checks", "[conv]") {
  Generator gen(11);
  const std::vector<ConvCase> cases = {
      {{2, 3, 5, 5}, {4, 3, 3, 3}, true, 1, 1},
      {{2, 2, 6, 5}, {3, 2, 3, 2}, false, {2, 1}, {1, 0}},
      {{1, 3, 7, 6}, {2, 3, 2, 3}, true, {2, 3}, {0, 1}},
      {{1, 2, 6, 7}, {2, 2, 3, 3}, true, {1, 2}, 1},  // overlapping strided windows
      {{2, 3, 4, 3}, {2, 3, 1, 1}, true, 1, 0},       // pointwise fast path
      {{2, 2, 5, 4}, {3, 2, 1, 1}, false, 2, 0},      // 1x1 with stride: im2col path
  };
  for (const ConvCase& c : cases) {
    CAPTURE(shape_str(c.x), shape_str(c.w), c.bias, c.stride.h, c.stride.w, c.padding.h, c.padding.w);
    std::vector<Tensor> inputs = {Tensor::randn(c.x, gen).requires_grad_(), Tensor::randn(c.w, gen).requires_grad_()};
    if (c.bias) inputs.push_back(Tensor::randn({c.w[0]}, gen).requires_grad_());
    testing::check_gradients(
        [&](const std::vector<Tensor>& in) {
          return ops::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), c.stride, c.padding);
        },
        inputs, kLinearGradcheck);
  }
}

TEST_CASE("conv2d computes only the gradients that are needed", "[conv]") {
  Generator gen(12);
  Tensor x = Tensor::randn({2, 2, 5, 5}, gen);
  Tensor w = Tensor::randn({3, 2, 3, 3}, gen).requires_grad_();
  Tensor b = Tensor::randn({3}, gen);
  testing::check_gradients([&](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], 2, 1); },
                           {x, w, b}, kLinearGradcheck);
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("conv2d gradients match direct loops", "[conv]") {
  // Images are batched into groups: several groups with a small weight (partial weight gradients
  // summed in order) and with a larger one (accumulated group by group). Large images go one at a
  // time, the largest in bands of output rows, and a pointwise kernel then reads x in place.
  Generator gen(13);
  const std::vector<ConvCase> cases = {
      {{16, 32, 32, 32}, {16, 32, 3, 3}, true, 1, 1},     {{8, 64, 16, 16}, {32, 64, 3, 3}, true, 1, 1},
      {{5, 3, 9, 7}, {4, 3, 3, 2}, true, {2, 1}, {1, 1}}, {{3, 2, 48, 48}, {3, 2, 3, 3}, true, 1, 1},
      {{3, 3, 46, 46}, {4, 3, 1, 1}, true, 1, 0},         {{7, 3, 4, 4}, {4, 3, 1, 1}, false, 1, 0},
      {{2, 16, 84, 84}, {16, 16, 3, 3}, true, 1, 1},     // bands
      {{1, 16, 170, 170}, {16, 16, 3, 3}, true, 2, 1},   // bands whose input rows overlap
      {{1, 40, 120, 120}, {48, 40, 1, 1}, false, 1, 0},  // pointwise bands
      // Small planes: a few groups that each use the pool (the weight packed once per call), and
      // padding wider than the kernel reaches, so whole windows and band rows are padding.
      {{70, 64, 7, 7}, {64, 64, 3, 3}, true, 1, 1},
      {{6, 3, 2, 2}, {4, 3, 3, 3}, true, 1, 2},
      {{5, 2, 3, 4}, {3, 2, 3, 2}, false, 2, {2, 3}},
      {{3, 2, 2, 3}, {3, 2, 1, 1}, true, 1, 1},  // 1x1 kernel with padding: im2col path
  };
  for (const ConvCase& c : cases) check_against_loops(c, gen);
}

namespace {

// Checks that conv2d's output and its input, weight and bias gradients are bit-identical with 1 and 2 threads.
void check_thread_count_independence(const ConvCase& c, Generator& gen) {
  CAPTURE(shape_str(c.x), shape_str(c.w));
  Tensor x = Tensor::randn(c.x, gen).requires_grad_();
  Tensor w = Tensor::randn(c.w, gen).requires_grad_();
  Tensor b = Tensor::randn({c.w[0]}, gen).requires_grad_();
  auto f = [&](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], c.stride, c.padding); };
  Tensor dy = Tensor::randn(ops::conv2d(x.detach(), w.detach(), b.detach(), c.stride, c.padding).shape(), gen);
  std::vector<std::vector<float>> results[2];
  with_one_then_two_threads([&](int threads) {
    results[threads - 1] = gradients(f, {x, w, b}, dy);
    NoGradGuard no_grad;
    results[threads - 1].push_back(f({x, w, b}).to_vector());
  });
  REQUIRE(results[0].size() == 4);
  for (size_t k = 0; k < 4; ++k) {
    CAPTURE(k);
    CHECK(bit_identical(results[0][k], results[1][k]));
  }
}

}  // namespace

TEST_CASE("conv2d results do not depend on the thread count", "[conv]") {
  Generator gen(17);
  const std::vector<ConvCase> cases = {
      {{6, 8, 16, 16}, {16, 8, 3, 3}, true, 1, 1},    {{5, 16, 9, 9}, {8, 16, 1, 1}, true, 1, 0},
      {{16, 32, 32, 32}, {16, 32, 3, 3}, true, 1, 1},  // several groups, small weight
      {{8, 64, 16, 16}, {32, 64, 3, 3}, true, 1, 1},   // several groups, larger weight
      {{2, 16, 84, 84}, {16, 16, 3, 3}, true, 1, 1},   // lone images in bands of rows
      {{70, 64, 7, 7}, {64, 64, 3, 3}, true, 1, 1},    // a few groups, each GEMM over the pool
  };
  for (const ConvCase& c : cases) check_thread_count_independence(c, gen);
}

TEST_CASE("conv2d per-tap path matches direct loops and the thread count does not matter", "[conv]") {
  // At least 64 input channels on small padded planes: the forward pass and input gradient go one
  // GEMM per kernel tap over the positions it reads inside the image. Covers strides, taps that
  // never read inside the image (padding 2 on a 2x2 plane), partial and whole-plane taps.
  Generator gen(19);
  const std::vector<ConvCase> cases = {
      {{12, 64, 3, 3}, {16, 64, 3, 3}, true, 1, 1},
      {{5, 64, 5, 4}, {8, 64, 3, 2}, false, {2, 1}, 1},
      {{3, 64, 2, 2}, {4, 64, 3, 3}, true, 1, 2},
      {{4, 96, 7, 7}, {24, 96, 3, 3}, true, 1, 1},
  };
  for (const ConvCase& c : cases) check_against_loops(c, gen);
  // Many groups of images, run in parallel (each GEMM serial), and a few groups, each over the pool.
  const std::vector<ConvCase> identity_cases = {
      {{80, 1024, 7, 7}, {16, 1024, 3, 3}, true, 1, 1},
      {{30, 128, 3, 3}, {32, 128, 3, 3}, true, 1, 1},
  };
  for (const ConvCase& c : identity_cases) check_thread_count_independence(c, gen);
}

TEST_CASE("conv2d rejects bad inputs", "[conv]") {
  Generator gen(19);
  Tensor x = Tensor::randn({2, 3, 8, 8}, gen);
  const std::string mismatch = error_message([&] { ops::conv2d(x, Tensor::randn({4, 5, 3, 3}, gen)); });
  CHECK_THAT(mismatch, Catch::Matchers::Contains("conv2d") && Catch::Matchers::Contains("[2, 3, 8, 8]") &&
                           Catch::Matchers::Contains("[4, 5, 3, 3]"));
  CHECK_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 3, 9, 3}, gen)), Error);         // kernel taller than the input
  CHECK_NOTHROW(ops::conv2d(x, Tensor::randn({4, 3, 9, 3}, gen), Tensor(), 1, 1));  // fits once padded
  CHECK_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 3, 11, 3}, gen), Tensor(), 1, 1), Error);
  CHECK_THROWS_AS(ops::conv2d(Tensor::randn({3, 8, 8}, gen), Tensor::randn({4, 3, 3, 3}, gen)), Error);
  CHECK_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 3, 3}, gen)), Error);
  CHECK_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 3, 3, 3}, gen), Tensor::randn({3}, gen)), Error);  // bias size
  CHECK_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 3, 3, 3}, gen), Tensor(), 0), Error);
  CHECK_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 3, 3, 3}, gen), Tensor(), 1, -1), Error);
}

TEST_CASE("pooling forward and backward match direct loops", "[pool]") {
  Generator gen(23);
  const std::vector<PoolCase> cases = {
      {{2, 3, 8, 8}, 2, 2, 0, false},
      {{2, 2, 9, 7}, 3, 2, 1, false},
      {{1, 3, 9, 7}, 3, 2, 1, true},
      {{2, 2, 5, 5}, 2, 2, 0, true},  // ceil_mode: clipped last windows
      {{1, 2, 8, 7}, {3, 2}, {2, 1}, {1, 0}, true},
      {{2, 1, 10, 11}, {4, 3}, 3, {2, 1}, true},  // the last window is dropped
      {{1, 2, 6, 6}, 3, 1, 1, false},             // overlapping windows
  };
  for (const PoolCase& c : cases) {
    CAPTURE(shape_str(c.x), c.kernel.h, c.kernel.w, c.stride.h, c.stride.w, c.padding.h, c.padding.w, c.ceil_mode);
    // Values on a coarse grid so that max windows contain ties.
    Tensor x = Tensor::from_vector(
        [&] {
          std::vector<float> v = Tensor::randn(c.x, gen).to_vector();
          for (float& e : v) e = std::round(e * 2.0f);
          return v;
        }(),
        c.x);
    x.requires_grad_();
    for (bool count_include_pad : {true, false}) {
      CAPTURE(count_include_pad);
      Tensor mx = ops::max_pool2d(x, c.kernel, c.stride, c.padding, c.ceil_mode);
      Tensor av = ops::avg_pool2d(x, c.kernel, c.stride, c.padding, c.ceil_mode, count_include_pad);
      REQUIRE(mx.shape() == av.shape());
      Tensor dy = Tensor::randn(mx.shape(), gen);
      const NaivePool expected = naive_pool(x, c, mx.size(2), mx.size(3), count_include_pad, dy.to_vector());
      check_close(mx.to_vector(), expected.max, 0.0);
      check_close(av.to_vector(), expected.avg, 1e-6);
      x.set_grad(Tensor());
      mx.backward(dy);
      check_close(x.grad().to_vector(), expected.max_grad, 1e-6);
      x.set_grad(Tensor());
      av.backward(dy);
      check_close(x.grad().to_vector(), expected.avg_grad, 1e-6);
    }
  }
}

TEST_CASE("pooling output sizes follow torch's ceil_mode rule", "[pool]") {
  // out = floor((in + 2 pad - k + (ceil ? stride - 1 : 0)) / stride) + 1, minus one in ceil mode
  // when the last window would start at or past in + pad; worked out by hand.
  struct SizeCase {
    int64_t in, k, stride, pad;
    int64_t floor_out, ceil_out;
  };
  const std::vector<SizeCase> cases = {
      {5, 2, 2, 0, 2, 3},   // 3/2+1 = 2; 4/2+1 = 3, last start 4 < 5
      {6, 3, 2, 1, 3, 4},   // 5/2+1 = 3; 6/2+1 = 4, last start 6 < 7
      {5, 3, 3, 1, 2, 2},   // 4/3+1 = 2; 6/3+1 = 3, but last start 6 >= 6: 2
      {3, 2, 2, 1, 2, 2},   // 3/2+1 = 2; 4/2+1 = 3, but last start 4 >= 4: 2
      {10, 4, 3, 2, 4, 4},  // 10/3+1 = 4; 12/3+1 = 5, but last start 12 >= 12: 4
      {11, 4, 3, 0, 3, 4},  // 7/3+1 = 3; 9/3+1 = 4, last start 9 < 11
      {7, 3, 2, 0, 3, 3},   // 4/2+1 = 3; 5/2+1 = 3
      {2, 2, 2, 1, 2, 2},   // 2/2+1 = 2; 3/2+1 = 2
  };
  for (const SizeCase& c : cases) {
    CAPTURE(c.in, c.k, c.stride, c.pad);
    Tensor x = Tensor::zeros({1, 2, c.in, 3});
    for (bool ceil_mode : {false, true}) {
      CAPTURE(ceil_mode);
      const int64_t expected = ceil_mode ? c.ceil_out : c.floor_out;
      const Shape expected_shape{1, 2, expected, 3};
      CHECK(ops::max_pool2d(x, {c.k, 1}, Size2{c.stride, 1}, {c.pad, 0}, ceil_mode).shape() == expected_shape);
      CHECK(ops::avg_pool2d(x, {c.k, 1}, Size2{c.stride, 1}, {c.pad, 0}, ceil_mode).shape() == expected_shape);
    }
  }
  // The stride defaults to the kernel.
  Tensor x = Tensor::zeros({1, 1, 7, 9});
  CHECK(ops::max_pool2d(x, {2, 3}).shape() == Shape{1, 1, 3, 3});
  CHECK(ops::avg_pool2d(x, {2, 3}, std::nullopt, 0, true).shape() == Shape{1, 1, 4, 3});
}

TEST_CASE("avg_pool2d divisors in ceil mode", "[pool]") {
  // in = 6, k = 3, stride 2, pad 1, ceil: windows start at -1, 1, 3, 5; the last covers input 5
  // and one padding column (pool size 2 with count_include_pad, 1 without); the first covers a
  // padding column and inputs 0, 1 (3 with padding, 2 without).
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 1, 6});
  CHECK(ops::avg_pool2d(x, {1, 3}, Size2{1, 2}, {0, 1}, true, true).to_vector() ==
        std::vector<float>{3.0f / 3, 9.0f / 3, 15.0f / 3, 6.0f / 2});
  CHECK(ops::avg_pool2d(x, {1, 3}, Size2{1, 2}, {0, 1}, true, false).to_vector() ==
        std::vector<float>{3.0f / 2, 9.0f / 3, 15.0f / 3, 6.0f / 1});
}

TEST_CASE("pooling gradients pass finite-difference checks", "[pool]") {
  Generator gen(29);
  const std::vector<PoolCase> cases = {
      {{2, 2, 6, 6}, 2, 2, 0, false}, {{1, 2, 7, 6}, 3, 2, 1, false},
      {{1, 2, 7, 6}, 3, 2, 1, true},  {{2, 1, 5, 7}, {3, 2}, {2, 1}, {1, 0}, true},
      {{1, 2, 5, 5}, 2, 2, 0, true},
  };
  for (const PoolCase& c : cases) {
    CAPTURE(shape_str(c.x), c.kernel.h, c.kernel.w, c.stride.h, c.stride.w, c.padding.h, c.padding.w, c.ceil_mode);
    // Distinct values 0.01 apart, so no perturbation changes which element is a window's maximum.
    const int64_t n = shape_numel(c.x);
    std::vector<float> values(n);
    const std::vector<int64_t> order = gen.permutation(n);
    for (int64_t i = 0; i < n; ++i) values[i] = 0.01f * static_cast<float>(order[i] - n / 2);
    Tensor x = Tensor::from_vector(values, c.x).requires_grad_();
    testing::check_gradients(
        [&](const std::vector<Tensor>& in) {
          return ops::max_pool2d(in[0], c.kernel, c.stride, c.padding, c.ceil_mode);
        },
        {x});
    for (bool count_include_pad : {true, false}) {
      CAPTURE(count_include_pad);
      testing::check_gradients(
          [&](const std::vector<Tensor>& in) {
            return ops::avg_pool2d(in[0], c.kernel, c.stride, c.padding, c.ceil_mode, count_include_pad);
          },
          {Tensor::randn(c.x, gen).requires_grad_()}, kLinearGradcheck);
    }
  }
}

TEST_CASE("max_pool2d routes a tied gradient to the first maximum", "[pool]") {
  // One 3x3 window holding the maximum 5 at (0, 2), (1, 0) and (2, 2): row-major order picks (0, 2).
  Tensor x = Tensor::from_vector({1, 2, 5, 5, 0, 3, 4, 1, 5}, {1, 1, 3, 3}).requires_grad_();
  Tensor y = ops::max_pool2d(x, 3);
  CHECK(y.to_vector() == std::vector<float>{5});
  y.backward(Tensor::full({1, 1, 1, 1}, 2.0f));
  CHECK(x.grad().to_vector() == std::vector<float>{0, 0, 2, 0, 0, 0, 0, 0, 0});

  // A constant input: every window sends its gradient to its top-left element; overlapping
  // windows (stride 1) add up there.
  Tensor c = Tensor::full({1, 1, 3, 4}, 1.0f).requires_grad_();
  ops::max_pool2d(c, 2, 1).backward(Tensor::ones({1, 1, 2, 3}));
  CHECK(c.grad().to_vector() == std::vector<float>{1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0});
}

TEST_CASE("max_pool2d propagates NaN and -inf like torch", "[pool]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::from_vector({1, nan, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4}).requires_grad_();
  Tensor y = ops::max_pool2d(x, 2);
  const std::vector<float> v = y.to_vector();
  CHECK(std::isnan(v[0]));
  CHECK(v[1] == 8.0f);
  y.backward(Tensor::ones({1, 1, 1, 2}));
  CHECK(x.grad().to_vector() == std::vector<float>{0, 1, 0, 0, 0, 0, 0, 1});

  // Overlapping windows (the two-pass path): the last NaN in row-major window order wins.
  Tensor o = Tensor::from_vector({1, nan, 2, nan, 3, 4, 5, 6, 9}, {1, 1, 3, 3}).requires_grad_();
  Tensor p = ops::max_pool2d(o, 2, 1);
  const std::vector<float> pv = p.to_vector();
  CHECK((std::isnan(pv[0]) && std::isnan(pv[1]) && std::isnan(pv[2]) && pv[3] == 9.0f));
  p.backward(Tensor::from_vector({1, 10, 100, 1000}, {1, 1, 2, 2}));
  CHECK(o.grad().to_vector() == std::vector<float>{0, 10, 0, 101, 0, 0, 0, 0, 1000});

  // A window of -inf only (here padded at the top-left) gives -inf and routes to its first input.
  const float inf = std::numeric_limits<float>::infinity();
  Tensor m = Tensor::full({1, 1, 3, 3}, -inf).requires_grad_();
  Tensor z = ops::max_pool2d(m, 2, 2, 1);
  CHECK(z.to_vector() == std::vector<float>(4, -inf));
  z.backward(Tensor::ones({1, 1, 2, 2}));
  CHECK(m.grad().to_vector() == std::vector<float>{1, 1, 0, 1, 1, 0, 0, 0, 0});
}

TEST_CASE("pooling results do not depend on the thread count", "[pool]") {
  Generator gen(31);
  Tensor x = Tensor::randn({6, 16, 17, 17}, gen).requires_grad_();
  Tensor dy = Tensor::randn({6, 16, 9, 9}, gen);
  auto max_f = [](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], 3, 2, 1, true); };
  auto avg_f = [](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], 3, 2, 1, true, false); };
  const std::vector<std::function<Tensor(const std::vector<Tensor>&)>> ops_under_test = {max_f, avg_f};
  std::vector<float> outputs[2][2], grads[2][2];
  with_one_then_two_threads([&](int threads) {
    for (int op = 0; op < 2; ++op) {
      grads[threads - 1][op] = gradients(ops_under_test[op], {x}, dy)[0];
      outputs[threads - 1][op] = ops_under_test[op]({x}).to_vector();
    }
  });
  for (int op = 0; op < 2; ++op) {
    CAPTURE(op);
    CHECK(bit_identical(outputs[0][op], outputs[1][op]));
    CHECK(bit_identical(grads[0][op], grads[1][op]));
  }
}

TEST_CASE("pooling rejects bad inputs", "[pool]") {
  Tensor x = Tensor::zeros({1, 2, 4, 4});
  for (bool max : {true, false}) {
    CAPTURE(max);
    auto pool = [&](const Tensor& t, Size2 k, std::optional<Size2> s, Size2 p) {
      return max ? ops::max_pool2d(t, k, s, p) : ops::avg_pool2d(t, k, s, p);
    };
    CHECK_THROWS_AS(pool(Tensor::zeros({2, 4, 4}), 2, std::nullopt, 0), Error);  // not 4-D
    CHECK_THROWS_AS(pool(x, 5, std::nullopt, 0), Error);                         // kernel > input
    CHECK_NOTHROW(pool(x, 5, std::nullopt, 2));                                  // fits once padded
    CHECK_THROWS_AS(pool(x, {2, 7}, std::nullopt, {0, 1}), Error);               // > padded input
    CHECK_THROWS_AS(pool(x, 3, std::nullopt, 2), Error);                         // padding > kernel / 2
    CHECK_THROWS_AS(pool(x, 0, std::nullopt, 0), Error);
    CHECK_THROWS_AS(pool(x, 2, Size2{0}, 0), Error);
    CHECK_THAT(error_message([&] {
                 pool(Tensor::zeros({2, 4, 4}), 2, std::nullopt, 0);
               }),
               Catch::Matchers::Contains(max ? "max_pool2d" : "avg_pool2d") && Catch::Matchers::Contains("[2, 4, 4]"));
  }
}

}  // namespace flexnn
