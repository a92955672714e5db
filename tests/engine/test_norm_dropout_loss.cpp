// Tests of batch_norm, dropout / dropout2d, log_softmax and cross_entropy: forward against naive
// double-precision loops written here, backward against finite differences, running statistics,
// the Philox mask layout, numerical stability, thread-count determinism and input errors.
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "gradcheck.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/philox.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

using namespace flexnn;
using Catch::Matchers::Contains;

namespace {

Tensor leaf(Tensor t) { return t.requires_grad_(); }

// Runs f with 1 and then 2 threads, restoring the previous count; returns both results.
template <typename F> auto with_1_and_2_threads(F f) {
  const int previous = cpu::num_threads();
  cpu::set_num_threads(1);
  auto one = f();
  cpu::set_num_threads(2);
  auto two = f();
  cpu::set_num_threads(previous);
  return std::make_pair(one, two);
}

// ---- batch_norm -----------------------------------------------------------------------------

struct NaiveBatchNorm {
  std::vector<double> y, mean, biased_var, unbiased_var;
};

// x viewed as [n, c, hw]; statistics from the batch (training) or the given ones (evaluation).
NaiveBatchNorm naive_batch_norm(const std::vector<float>& x, int64_t n, int64_t c, int64_t hw,
                                const std::vector<float>* weight, const std::vector<float>* bias, double eps,
                                const std::vector<float>* fixed_mean = nullptr,
                                const std::vector<float>* fixed_var = nullptr) {
  NaiveBatchNorm r{std::vector<double>(x.size()), std::vector<double>(c), std::vector<double>(c),
                   std::vector<double>(c)};
  const double m = static_cast<double>(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) sum += x[(i * c + ch) * hw + j];
    const double mean = sum / m;
    double sq = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) sq += (x[(i * c + ch) * hw + j] - mean) * (x[(i * c + ch) * hw + j] - mean);
    r.mean[ch] = mean;
    r.biased_var[ch] = sq / m;
    r.unbiased_var[ch] = sq / (m - 1);
    const double use_mean = fixed_mean ? (*fixed_mean)[ch] : mean;
    const double use_var = fixed_var ? (*fixed_var)[ch] : sq / m;
    const double w = weight ? (*weight)[ch] : 1.0, b = bias ? (*bias)[ch] : 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) {
        const int64_t k = (i * c + ch) * hw + j;
        r.y[k] = (x[k] - use_mean) / std::sqrt(use_var + eps) * w + b;
      }
  }
  return r;
}

void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::abs(got[i] - want[i]) > tol * (1.0 + std::abs(want[i])) && ++bad <= 5)
      FAIL_CHECK("element " << i << ": got " << got[i] << " want " << want[i]);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("batch_norm training forward and running statistics match a naive computation", "[batchnorm]") {
  Generator gen(11);
  for (const Shape& shape : {Shape{6, 5}, Shape{3, 4, 5, 7}, Shape{2, 3, 9}}) {
    const int64_t n = shape[0], c = shape[1], hw = shape_numel(shape) / (n * c);
    Tensor x = ops::add(Tensor::randn(shape, gen, 0.0f, 2.0f), 3.0f);
    Tensor weight = Tensor::randn({c}, gen), bias = Tensor::randn({c}, gen);
    Tensor running_mean = Tensor::randn({c}, gen), running_var = Tensor::rand({c}, gen, 0.5f, 2.0f);
    const std::vector<float> rm0 = running_mean.to_vector(), rv0 = running_var.to_vector();
    const float momentum = 0.3f, eps = 1e-3f;

    Tensor y = ops::batch_norm(x, running_mean, running_var, weight, bias, true, momentum, eps);
    const std::vector<float> w = weight.to_vector(), b = bias.to_vector();
    const NaiveBatchNorm want = naive_batch_norm(x.to_vector(), n, c, hw, &w, &b, eps);
    check_close(y.to_vector(), want.y, 1e-5);

    std::vector<double> want_rm(c), want_rv(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      want_rm[ch] = (1.0 - momentum) * rm0[ch] + momentum * want.mean[ch];
      want_rv[ch] = (1.0 - momentum) * rv0[ch] + momentum * want.unbiased_var[ch];
    }
    check_close(running_mean.to_vector(), want_rm, 1e-6);
    check_close(running_var.to_vector(), want_rv, 1e-6);

    // Without affine parameters or running statistics.
    Tensor y_plain = ops::batch_norm(x, {}, {}, {}, {}, true, momentum, eps);
    check_close(y_plain.to_vector(), naive_batch_norm(x.to_vector(), n, c, hw, nullptr, nullptr, eps).y, 1e-5);
  }
}

TEST_CASE("batch_norm evaluation uses the running statistics and leaves them alone", "[batchnorm]") {
  Generator gen(12);
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 3, 4, 4}}) {
    const int64_t n = shape[0], c = shape[1], hw = shape_numel(shape) / (n * c);
    Tensor x = Tensor::randn(shape, gen);
    Tensor weight = Tensor::randn({c}, gen), bias = Tensor::randn({c}, gen);
    Tensor running_mean = Tensor::randn({c}, gen), running_var = Tensor::rand({c}, gen, 0.5f, 2.0f);
    const std::vector<float> rm = running_mean.to_vector(), rv = running_var.to_vector();
    const std::vector<float> w = weight.to_vector(), b = bias.to_vector();

    Tensor y = ops::batch_norm(x, running_mean, running_var, weight, bias, false, 0.1f, 1e-5f);
    check_close(y.to_vector(), naive_batch_norm(x.to_vector(), n, c, hw, &w, &b, 1e-5, &rm, &rv).y, 1e-5);
    CHECK(running_mean.to_vector() == rm);
    CHECK(running_var.to_vector() == rv);
  }
  // A single value per channel is fine in evaluation.
  Tensor one = ops::batch_norm(Tensor::ones({1, 2}), Tensor::zeros({2}), Tensor::ones({2}), {}, {}, false);
  CHECK(one.to_vector()[0] == Approx(1.0f / std::sqrt(1.0f + 1e-5f)));
}

TEST_CASE("batch_norm gradients match finite differences", "[batchnorm]") {
  Generator gen(13);
  for (const Shape& shape : {Shape{5, 3}, Shape{3, 2, 3, 3}}) {
    const int64_t c = shape[1];
    for (bool training : {true, false}) {
      for (bool affine : {true, false}) {
        DYNAMIC_SECTION("shape " << shape_str(shape) << " training " << training << " affine " << affine) {
          std::vector<Tensor> inputs{leaf(Tensor::randn(shape, gen, 0.5f, 1.5f))};
          if (affine) inputs.insert(inputs.end(), {leaf(Tensor::randn({c}, gen)), leaf(Tensor::randn({c}, gen))});
          // Evaluation needs running statistics; training runs once with and once without.
          Tensor rm = Tensor::randn({c}, gen), rv = Tensor::rand({c}, gen, 0.5f, 2.0f);
          const bool with_running = !training || affine;
          testing::check_gradients(
              [&](const std::vector<Tensor>& in) {
                return ops::batch_norm(in[0], with_running ? rm : Tensor(), with_running ? rv : Tensor(),
                                       affine ? in[1] : Tensor(), affine ? in[2] : Tensor(), training, 0.1f, 1e-5f);
              },
              inputs);
        }
      }
    }
  }
}

TEST_CASE("batch_norm forward and backward are bit-identical for 1 and 2 threads", "[batchnorm]") {
  Generator gen(14);
  // Both shapes span several chunks of channels and of rows.
  for (const Shape& shape : {Shape{8, 64, 16, 16}, Shape{16, 5000}}) {
    const int64_t c = shape[1];
    Tensor x = Tensor::randn(shape, gen, 1.0f, 3.0f);
    Tensor weight = Tensor::randn({c}, gen), bias = Tensor::randn({c}, gen);
    Tensor g = Tensor::randn(x.shape(), gen);
    for (bool training : {true, false}) {
      auto run = [&] {
        Tensor xi = leaf(x.clone()), wi = leaf(weight.clone()), bi = leaf(bias.clone());
        Tensor rm = Tensor::zeros({c}), rv = Tensor::ones({c});
        Tensor y = ops::batch_norm(xi, rm, rv, wi, bi, training);
        y.backward(g);
        return std::vector<std::vector<float>>{y.to_vector(), xi.grad().to_vector(), wi.grad().to_vector(),
                                               bi.grad().to_vector(), rm.to_vector(), rv.to_vector()};
      };
      auto [one, two] = with_1_and_2_threads(run);
      CHECK(one == two);
    }
  }
}

TEST_CASE("batch_norm rejects bad inputs", "[batchnorm]") {
  Tensor x = Tensor::ones({4, 3, 2, 2});
  Tensor c3 = Tensor::ones({3}), c4 = Tensor::ones({4});
  CHECK_THROWS_WITH(ops::batch_norm(Tensor::ones({1, 3}), {}, {}, {}, {}, true),
                    Contains("expected more than 1 value per channel when training"));
  CHECK_THROWS_AS(ops::batch_norm(Tensor::ones({1, 3, 1, 1}), c3, c3, {}, {}, true), Error);
  CHECK_THROWS_AS(ops::batch_norm(Tensor::ones({4}), {}, {}, {}, {}, true), Error);
  CHECK_THROWS_WITH(ops::batch_norm(x, {}, {}, c4, {}, true), Contains("weight") && Contains("[4]"));
  CHECK_THROWS_AS(ops::batch_norm(x, {}, {}, c3, c4, true), Error);
  CHECK_THROWS_AS(ops::batch_norm(x, c3, {}, {}, {}, true), Error);
  CHECK_THROWS_AS(ops::batch_norm(x, c4, c4, {}, {}, true), Error);
  CHECK_THROWS_AS(ops::batch_norm(x, {}, {}, {}, {}, false), Error);
  CHECK_THROWS_AS(ops::batch_norm(Tensor::from_indices(std::vector<int64_t>{1, 2, 3, 4}, {2, 2}), {}, {}, {}, {}, true),
                  Error);
}

// ---- dropout --------------------------------------------------------------------------------

TEST_CASE("dropout keeps about 1-p of the elements, scaled by 1/(1-p)", "[dropout]") {
  const int64_t n = 100000;
  Generator data_gen(21);
  Tensor x = Tensor::rand({n}, data_gen, 1.0f, 2.0f);
  for (float p : {0.1f, 0.3f, 0.5f, 0.8f}) {
    Generator gen(5);
    Tensor y = ops::dropout(x, p, true, gen);
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    const float scale = 1.0f / (1.0f - p);
    int64_t kept = 0, wrong = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (yv[i] != 0.0f) {
        ++kept;
        wrong += yv[i] != xv[i] * scale;
      }
    }
    CHECK(wrong == 0);
    // The standard deviation of the fraction is at most 0.0016; a p off by 0.01 fails.
    CHECK(std::abs(static_cast<double>(kept) / n - (1.0 - p)) < 0.005);
  }
}

TEST_CASE("dropout masks come from the Philox stream at the generator's offset", "[dropout]") {
  const int64_t n = 1001;
  const float p = 0.4f;
  Tensor x = Tensor::ones({7, 11, 13});
  Generator gen(77);
  gen.reserve(3);  // a nonzero starting offset
  const uint64_t offset = gen.offset();
  Tensor y = ops::dropout(x, p, true, gen);
  CHECK(gen.offset() == offset + philox::uniform_blocks(n));
  const std::vector<float> yv = y.to_vector();
  int mismatches = 0;
  for (int64_t i = 0; i < n; ++i) mismatches += (yv[i] != 0.0f) != (philox::uniform(77, offset, i) >= p);
  CHECK(mismatches == 0);

  // Same seed and offset, same mask; the next draw differs.
  Generator again(77);
  again.reserve(3);
  CHECK(ops::dropout(x, p, true, again).to_vector() == yv);
  CHECK(ops::dropout(x, p, true, again).to_vector() != yv);
  Generator other(78);
  other.reserve(3);
  CHECK(ops::dropout(x, p, true, other).to_vector() != yv);
}

TEST_CASE("dropout2d zeroes whole channels, drawn one per (n, c)", "[dropout]") {
  const float p = 0.5f;
  for (const Shape& shape : {Shape{6, 10, 3, 4}, Shape{5, 8, 7}}) {
    const int64_t channels = shape[0] * shape[1], size = shape_numel(shape) / channels;
    Generator data_gen(3);
    Tensor x = Tensor::rand(shape, data_gen, 1.0f, 2.0f);
    Generator gen(9);
    const uint64_t offset = gen.offset();
    Tensor y = ops::dropout2d(x, p, true, gen);
    CHECK(gen.offset() == offset + philox::uniform_blocks(channels));
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
    int bad = 0, kept_channels = 0;
    for (int64_t ch = 0; ch < channels; ++ch) {
      const bool keep = philox::uniform(9, offset, ch) >= p;
      kept_channels += keep;
      for (int64_t j = 0; j < size; ++j) {
        const int64_t i = ch * size + j;
        bad += yv[i] != (keep ? xv[i] * (1.0f / (1.0f - p)) : 0.0f);
      }
    }
    CHECK(bad == 0);
    CHECK(kept_channels > 0);
    CHECK(kept_channels < channels);
  }
}

TEST_CASE("dropout gradient is the mask times the scale", "[dropout]") {
  Generator data_gen(4);
  const float p = 0.25f;
  for (bool channelwise : {false, true}) {
    Tensor x = leaf(Tensor::rand({4, 6, 5, 5}, data_gen, 1.0f, 2.0f));
    Tensor g = Tensor::randn(x.shape(), data_gen);
    Generator gen(31);
    Tensor y = channelwise ? ops::dropout2d(x, p, true, gen) : ops::dropout(x, p, true, gen);
    y.backward(g);
    const std::vector<float> xv = x.to_vector(), yv = y.to_vector(), gv = g.to_vector(), dx = x.grad().to_vector();
    int bad = 0;
    for (size_t i = 0; i < xv.size(); ++i) bad += dx[i] != gv[i] * (yv[i] != 0.0f ? 1.0f / (1.0f - p) : 0.0f);
    CHECK(bad == 0);

    // And against finite differences, with the mask fixed by a fresh generator per call.
    testing::check_gradients(
        [&](const std::vector<Tensor>& in) {
          Generator fixed(31);
          return channelwise ? ops::dropout2d(in[0], p, true, fixed) : ops::dropout(in[0], p, true, fixed);
        },
        {leaf(Tensor::randn({2, 3, 2, 2}, data_gen))});
  }
}

TEST_CASE("dropout is the identity when not training or p = 0, and zeroes everything at p = 1", "[dropout]") {
  Generator gen(1);
  Tensor x = leaf(Tensor::randn({3, 4, 2, 2}, gen));
  const uint64_t offset = gen.offset();
  CHECK(ops::dropout(x, 0.5f, false, gen).same(x));
  CHECK(ops::dropout(x, 0.0f, true, gen).same(x));
  CHECK(ops::dropout2d(x, 0.5f, false, gen).same(x));
  CHECK(ops::dropout2d(x, 0.0f, true, gen).same(x));
  CHECK(gen.offset() == offset);

  Tensor y = ops::dropout(x, 1.0f, true, gen);
  CHECK(y.to_vector() == std::vector<float>(48, 0.0f));
  ops::sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<float>(48, 0.0f));
  CHECK(ops::dropout2d(x, 1.0f, true, gen).to_vector() == std::vector<float>(48, 0.0f));
}

TEST_CASE("dropout is bit-identical for 1 and 2 threads", "[dropout]") {
  Generator data_gen(8);
  Tensor x = Tensor::randn({300001}, data_gen);
  Tensor x4 = Tensor::randn({8, 32, 32, 32}, data_gen);
  auto [one, two] = with_1_and_2_threads([&] {
    Generator gen(123);
    return std::vector<std::vector<float>>{ops::dropout(x, 0.3f, true, gen).to_vector(),
                                           ops::dropout2d(x4, 0.3f, true, gen).to_vector()};
  });
  CHECK(one == two);
}

TEST_CASE("dropout rejects bad inputs", "[dropout]") {
  Generator gen(0);
  Tensor x = Tensor::ones({2, 3, 4, 4});
  CHECK_THROWS_WITH(ops::dropout(x, -0.1f, true, gen), Contains("between 0 and 1"));
  CHECK_THROWS_AS(ops::dropout(x, 1.5f, true, gen), Error);
  CHECK_THROWS_AS(ops::dropout(x, std::numeric_limits<float>::quiet_NaN(), true, gen), Error);
  CHECK_THROWS_AS(ops::dropout(x, 1.5f, false, gen), Error);
  CHECK_THROWS_AS(ops::dropout2d(x, -1.0f, true, gen), Error);
  CHECK_THROWS_WITH(ops::dropout2d(Tensor::ones({4, 4}), 0.5f, true, gen), Contains("[4, 4]"));
  CHECK_THROWS_AS(ops::dropout2d(Tensor::ones({1, 2, 3, 4, 5}), 0.5f, true, gen), Error);
  CHECK_THROWS_AS(ops::dropout(Tensor::from_indices(std::vector<int64_t>{1, 2}, {2}), 0.5f, true, gen), Error);
}

// ---- log_softmax and cross_entropy --------------------------------------------------------------

namespace {

// log_softmax along dim d of a tensor of the given shape, in double.
std::vector<double> naive_log_softmax(const std::vector<float>& x, const Shape& shape, int64_t d) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= shape[i];
  for (size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t len = shape[d];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < len; ++k) m = std::max(m, static_cast<double>(x[(o * len + k) * inner + j]));
      double s = 0;
      for (int64_t k = 0; k < len; ++k) s += std::exp(x[(o * len + k) * inner + j] - m);
      for (int64_t k = 0; k < len; ++k) y[(o * len + k) * inner + j] = x[(o * len + k) * inner + j] - m - std::log(s);
    }
  return y;
}

double naive_cross_entropy(const std::vector<float>& logits, const std::vector<int64_t>& targets, int64_t c) {
  const int64_t n = static_cast<int64_t>(targets.size());
  const std::vector<double> lsm = naive_log_softmax(logits, {n, c}, 1);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total -= lsm[i * c + targets[i]];
  return total / n;
}

}  // namespace

TEST_CASE("log_softmax matches a naive computation along every dim", "[loss]") {
  Generator gen(41);
  for (const Shape& shape : {Shape{3, 4, 5}, Shape{2, 3, 130}, Shape{70, 2, 1}}) {
    Tensor x = Tensor::randn(shape, gen, 0.0f, 3.0f);
    for (int64_t dim : {0, 1, 2, -1}) {
      const int64_t d = dim < 0 ? dim + 3 : dim;
      check_close(ops::log_softmax(x, dim).to_vector(), naive_log_softmax(x.to_vector(), shape, d), 1e-5);
    }
  }
  CHECK(ops::log_softmax(Tensor::scalar(3.0f)).item() == 0.0f);
}

TEST_CASE("log_softmax gradients match finite differences", "[loss]") {
  Generator gen(42);
  for (int64_t dim : {0, 1, -1}) {
    DYNAMIC_SECTION("dim " << dim) {
      testing::check_gradients([dim](const std::vector<Tensor>& in) { return ops::log_softmax(in[0], dim); },
                               {leaf(Tensor::randn({3, 4, 5}, gen))});
    }
  }
}

TEST_CASE("cross_entropy matches a naive computation and finite differences", "[loss]") {
  Generator gen(43);
  const int64_t n = 6, c = 5;
  Tensor logits = leaf(Tensor::randn({n, c}, gen, 0.0f, 2.0f));
  const std::vector<int64_t> t = {0, 4, 2, 2, 1, 3};
  Tensor targets = Tensor::from_indices(t, {n});
  Tensor loss = ops::cross_entropy(logits, targets);
  CHECK(loss.shape().empty());
  CHECK(loss.item() == Approx(naive_cross_entropy(logits.to_vector(), t, c)).epsilon(1e-6));

  testing::check_gradients([&](const std::vector<Tensor>& in) { return ops::cross_entropy(in[0], targets); },
                           {logits});
  // The gradient scales with the incoming gradient: d(3 * loss) = 3 * (softmax - onehot) / n.
  logits.set_grad(Tensor());
  ops::mul(ops::cross_entropy(logits, targets), 3.0f).backward();
  const std::vector<float> grad = logits.grad().to_vector();
  const std::vector<double> lsm = naive_log_softmax(logits.to_vector(), {n, c}, 1);
  std::vector<double> want(n * c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k) want[i * c + k] = 3.0 * (std::exp(lsm[i * c + k]) - (k == t[i])) / n;
  check_close(grad, want, 1e-6);
}

TEST_CASE("log_softmax and cross_entropy stay finite for huge logits", "[loss]") {
  const std::vector<float> v = {1e4f, -1e4f, 0.0f, 9990.0f, 3e4f, 3e4f, -3e4f, 1.0f};
  Tensor logits = leaf(Tensor::from_vector(v, {2, 4}));
  const std::vector<int64_t> t = {1, 2};
  Tensor loss = ops::cross_entropy(logits, Tensor::from_indices(t, {2}));
  CHECK(std::isfinite(loss.item()));
  CHECK(loss.item() == Approx(naive_cross_entropy(v, t, 4)).epsilon(1e-6));
  loss.backward();
  for (float g : logits.grad().to_vector()) CHECK(std::isfinite(g));

  const std::vector<float> lsm = ops::log_softmax(logits).to_vector();
  for (float y : lsm) CHECK(std::isfinite(y));
  check_close(lsm, naive_log_softmax(v, {2, 4}, 1), 1e-6);
}

TEST_CASE("log_softmax and cross_entropy are bit-identical for 1 and 2 threads", "[loss]") {
  Generator gen(44);
  Tensor x = Tensor::randn({64, 300, 3}, gen, 0.0f, 4.0f);
  Tensor logits = Tensor::randn({2000, 100}, gen, 0.0f, 4.0f);
  std::vector<int64_t> t(2000);
  for (int64_t i = 0; i < 2000; ++i) t[i] = (i * 37) % 100;
  Tensor targets = Tensor::from_indices(t, {2000});
  auto [one, two] = with_1_and_2_threads([&] {
    std::vector<std::vector<float>> out;
    for (int64_t dim : {0, 1, 2}) {
      Tensor xi = leaf(x.clone());
      Tensor y = ops::log_softmax(xi, dim);
      y.backward(ops::add(x, 0.5f));
      out.push_back(y.to_vector());
      out.push_back(xi.grad().to_vector());
    }
    Tensor li = leaf(logits.clone());
    Tensor loss = ops::cross_entropy(li, targets);
    loss.backward();
    out.push_back(loss.to_vector());
    out.push_back(li.grad().to_vector());
    return out;
  });
  CHECK(one == two);
}

TEST_CASE("log_softmax and cross_entropy reject bad inputs", "[loss]") {
  Tensor logits = Tensor::zeros({3, 4});
  auto targets = [](std::vector<int64_t> t) {
    const int64_t n = static_cast<int64_t>(t.size());
    return Tensor::from_indices(t, {n});
  };
  CHECK_THROWS_WITH(ops::cross_entropy(logits, targets({0, 1, 7})), Contains("target 7") && Contains("index 2"));
  CHECK_THROWS_WITH(ops::cross_entropy(logits, targets({-1, 1, 2})), Contains("target -1") && Contains("index 0"));
  CHECK_THROWS_WITH(ops::cross_entropy(logits, targets({0, 1})), Contains("[2]") && Contains("[3, 4]"));
  CHECK_THROWS_AS(ops::cross_entropy(logits, Tensor::zeros({3})), Error);
  CHECK_THROWS_AS(ops::cross_entropy(Tensor::zeros({3, 4, 2}), targets({0, 1, 2})), Error);
  CHECK_THROWS_AS(ops::cross_entropy(Tensor::zeros({3}), targets({0, 1, 2})), Error);
  CHECK_THROWS_AS(ops::log_softmax(logits, 2), Error);
  CHECK_THROWS_AS(ops::log_softmax(logits, -3), Error);
  CHECK_THROWS_AS(ops::log_softmax(targets({1, 2}), 0), Error);
}
