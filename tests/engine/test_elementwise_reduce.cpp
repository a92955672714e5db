// Element-wise ops, reductions, matmul/linear and concat/slice: forward values against naive
// loops, finite-difference gradients (broadcasting included), and thread-count determinism.
#include "gradcheck.hpp"

#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "kernels/cpu/parallel.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace flexnn;
using flexnn::testing::check_gradients;

namespace {

Tensor random_input(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  Generator gen(seed);
  return Tensor::rand(shape, gen, low, high).requires_grad_();
}

// Values in [0.2, 1] in magnitude with random signs: away from the kinks of relu, abs, sign.
Tensor away_from_zero(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v = Tensor::rand(shape, gen, 0.2f, 1.0f).to_vector();
  const std::vector<float> s = Tensor::rand(shape, gen).to_vector();
  for (size_t i = 0; i < v.size(); ++i) v[i] = s[i] < 0.5f ? -v[i] : v[i];
  return Tensor::from_vector(v, shape).requires_grad_();
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

}  // namespace

TEST_CASE("binary ops broadcast scalar, per-channel and per-unit operands", "[elementwise]") {
  const Shape x_shape{2, 3, 2, 2};
  for (const Shape& other : {Shape{}, Shape{1}, Shape{3, 1, 1}, Shape{3, 2, 2}, Shape{2, 3, 2, 2}, Shape{2, 1, 2, 1}}) {
    DYNAMIC_SECTION("other operand " << shape_str(other)) {
      Tensor a = random_input(x_shape, 1);
      Tensor b = random_input(other, 2, 0.5f, 1.5f);  // away from 0 for div
      // Forward against a naive broadcast loop.
      const std::vector<float> av = a.to_vector(), bv = b.to_vector();
      const std::vector<float> sum = ops::add(a, b).to_vector(), quotient = ops::div(b, a).to_vector();
      Shape padded(4 - other.size(), 1);
      padded.insert(padded.end(), other.begin(), other.end());
      for (int64_t i = 0; i < 24; ++i) {
        int64_t rest = i, bi = 0, stride = 1;
        for (int d = 3; d >= 0; --d) {
          const int64_t idx = rest % x_shape[d];
          rest /= x_shape[d];
          bi += (padded[d] == 1 ? 0 : idx) * stride;
          stride *= padded[d];
        }
        REQUIRE(sum[i] == av[i] + bv[bi]);
        REQUIRE(quotient[i] == bv[bi] / av[i]);
      }
      for (auto op : {ops::add, ops::sub, ops::mul, ops::div}) {
        Tensor den = random_input(other, 3, 0.5f, 1.5f);
        check_gradients([op](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {a, den});
        check_gradients([op](const std::vector<Tensor>& in) { return op(in[1], in[0]); }, {random_input(x_shape, 4, 0.5f, 1.5f), den});
      }
    }
  }
  CHECK_THROWS_WITH(ops::add(Tensor::zeros({2, 3}), Tensor::zeros({4})),
                    Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
}

TEST_CASE("unary ops: values and gradients", "[elementwise]") {
  Tensor x = away_from_zero({3, 7}, 5);
  const std::vector<float> v = x.to_vector();
  const std::vector<float> sig = ops::sigmoid(x).to_vector(), rel = ops::relu(x).to_vector(),
                           sgn = ops::sign(x).to_vector(), cl = ops::clamp(x, -0.5f, 0.5f).to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    CHECK(sig[i] == Approx(1 / (1 + std::exp(-v[i]))));
    CHECK(rel[i] == std::max(v[i], 0.0f));
    CHECK(sgn[i] == (v[i] > 0 ? 1.0f : -1.0f));
    CHECK(cl[i] == std::min(std::max(v[i], -0.5f), 0.5f));
  }
  CHECK(ops::sign(Tensor::zeros({2})).to_vector() == std::vector<float>{0, 0});
  const std::vector<std::pair<const char*, Fn>> cases = {
      {"neg", [](auto& in) { return ops::neg(in[0]); }},
      {"exp", [](auto& in) { return ops::exp(in[0]); }},
      {"log", [](auto& in) { return ops::log(ops::abs(in[0])); }},
      {"sqrt", [](auto& in) { return ops::sqrt(ops::abs(in[0])); }},
      {"sigmoid", [](auto& in) { return ops::sigmoid(in[0] * 3.0f); }},
      {"relu", [](auto& in) { return ops::relu(in[0]); }},
      {"tanh", [](auto& in) { return ops::tanh(in[0]); }},
      {"abs", [](auto& in) { return ops::abs(in[0]); }},
      {"clamp", [](auto& in) { return ops::clamp(in[0], -0.55f, 0.45f); }},
      {"pow", [](auto& in) { return ops::pow(ops::abs(in[0]), 2.5f); }},
      {"scalar arithmetic", [](auto& in) { return 2.0f - in[0] * 3.0f + 1.5f; }},
  };
  for (const auto& [name, fn] : cases) {
    DYNAMIC_SECTION(name) { check_gradients(fn, {x}); }
  }
  Tensor s = away_from_zero({5}, 6);
  ops::sum(ops::sign(s)).backward();
  CHECK(s.grad().to_vector() == std::vector<float>(5, 0.0f));
}

TEST_CASE("sum and mean over all or some dimensions", "[reduce]") {
  Tensor x = random_input({2, 3, 4, 5}, 7);
  const std::vector<float> v = x.to_vector();
  double total = 0;
  for (float e : v) total += e;
  CHECK(ops::sum(x).item() == Approx(total).epsilon(1e-5));
  CHECK(ops::mean(x).item() == Approx(total / 120).epsilon(1e-5));
  Tensor s = ops::sum(x, {0, 2, 3});
  REQUIRE(s.shape() == Shape{3});
  for (int c = 0; c < 3; ++c) {
    double expected = 0;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 20; ++i) expected += v[(n * 3 + c) * 20 + i];
    CHECK(s.to_vector()[c] == Approx(expected).epsilon(1e-5));
  }
  CHECK(ops::sum(x, {1, -1}, true).shape() == Shape{2, 1, 4, 1});
  CHECK(ops::mean(x, {0}).shape() == Shape{3, 4, 5});
  CHECK_THROWS_AS(ops::sum(x, {4}), Error);
  CHECK_THROWS_AS(ops::sum(x, {1, 1}), Error);
  for (const std::vector<int64_t>& dims : {std::vector<int64_t>{0}, {1}, {3}, {0, 2, 3}, {1, 2}, {0, 1, 2, 3}}) {
    for (bool keepdim : {false, true}) {
      DYNAMIC_SECTION("dims " << dims.size() << " first " << dims[0] << " keepdim " << keepdim) {
        check_gradients([&](auto& in) { return ops::sum(in[0], dims, keepdim); }, {x});
        check_gradients([&](auto& in) { return ops::mean(in[0], dims, keepdim); }, {x});
      }
    }
  }
  check_gradients([](auto& in) { return ops::mean(in[0]); }, {x});
  check_gradients([](auto& in) { return ops::sum_to(in[0], {3, 1, 1}); }, {x});
}

TEST_CASE("max and argmax pick the first maximum and route the gradient to it", "[reduce]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 5, 5, 2, 7, 0}, {2, 3}).requires_grad_();
  ops::MaxResult m = ops::max(x, 1);
  CHECK(m.values.to_vector() == std::vector<float>{5, 7});
  CHECK(m.indices.dtype() == DType::Int64);
  CHECK(m.indices.data<int64_t>()[0] == 1);
  CHECK(m.indices.data<int64_t>()[1] == 1);
  ops::sum(m.values).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{0, 1, 0, 0, 1, 0});
  CHECK(ops::argmax(x, 0).data<int64_t>()[2] == 0);
  CHECK(ops::max(x, 0, true).values.shape() == Shape{1, 3});
  Tensor nan = Tensor::from_vector(std::vector<float>{1, NAN, 3}, {3});
  CHECK(std::isnan(ops::max(nan, 0).values.item()));
  Tensor distinct = Tensor::from_vector(std::vector<float>{0.1f, 0.9f, 0.3f, 0.5f, 0.2f, 0.7f, 0.8f, 0.4f}, {2, 2, 2});
  distinct.requires_grad_();
  for (int64_t dim : {0, 1, 2}) check_gradients([dim](auto& in) { return ops::max(in[0], dim).values; }, {distinct});
}

TEST_CASE("matmul and linear: values and gradients", "[linear]") {
  Tensor a = random_input({5, 7}, 8), b = random_input({7, 3}, 9);
  const std::vector<float> av = a.to_vector(), bv = b.to_vector(), c = ops::matmul(a, b).to_vector();
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 3; ++j) {
      double expected = 0;
      for (int k = 0; k < 7; ++k) expected += av[i * 7 + k] * bv[k * 3 + j];
      CHECK(c[i * 3 + j] == Approx(expected).epsilon(1e-5).margin(1e-6));
    }
  check_gradients([](auto& in) { return ops::matmul(in[0], in[1]); }, {a, b});
  Tensor x = random_input({4, 6}, 10), w = random_input({3, 6}, 11), bias = random_input({3}, 12);
  check_gradients([](auto& in) { return ops::linear(in[0], in[1], in[2]); }, {x, w, bias});
  check_gradients([](auto& in) { return ops::linear(in[0], in[1]); }, {x, w});
  CHECK_THROWS_WITH(ops::linear(x, Tensor::zeros({3, 5})), Catch::Contains("[4, 6]") && Catch::Contains("[3, 5]"));
  CHECK_THROWS_AS(ops::matmul(a, a), Error);
}

TEST_CASE("concat and slice gradients", "[join]") {
  Tensor a = random_input({2, 3, 2}, 13), b = random_input({1, 3, 2}, 14), c = random_input({2, 1, 2}, 15);
  check_gradients([](auto& in) { return ops::concat({in[0], in[1]}, 0); }, {a, b});
  check_gradients([](auto& in) { return ops::concat({in[0], in[1], in[0]}, 1); }, {a, c});
  check_gradients([](auto& in) { return ops::slice(in[0], 0, 1, 2); }, {a});
  check_gradients([](auto& in) { return ops::slice(in[0], 2, 1, 2); }, {a});
  check_gradients([](auto& in) { return in[0].reshape({3, 4}).flatten(); }, {a});
}

TEST_CASE("large GEMM, reductions and broadcasts are bit-identical with 1 and 2 threads", "[linear][determinism]") {
  Tensor x = random_input({100, 691}, 16), w = random_input({120, 691}, 17), bias = random_input({120}, 18);
  Tensor per_unit = random_input({120}, 19);
  auto run = [&] {
    for (Tensor* t : {&x, &w, &bias}) t->set_grad(Tensor());
    Tensor y = ops::linear(x, w, bias);
    Tensor loss = ops::mean(ops::tanh(ops::mul(y, per_unit)));
    loss.backward();
    return std::vector<std::vector<float>>{y.to_vector(), x.grad().to_vector(), w.grad().to_vector(),
                                           bias.grad().to_vector()};
  };
  const int threads = cpu::num_threads();
  cpu::set_num_threads(1);
  const auto one = run();
  cpu::set_num_threads(2);
  const auto two = run();
  cpu::set_num_threads(threads);
  CHECK(one == two);
}

TEST_CASE("broadcasting ops on empty tensors give empty results", "[elementwise]") {
  const Tensor a = Tensor::zeros({0, 3}), b = Tensor::ones({3});
  CHECK(ops::add(a, b).shape() == Shape{0, 3});
  CHECK(ops::mul(b, a).shape() == Shape{0, 3});
  CHECK(ops::add(Tensor::zeros({2, 0}), Tensor::zeros({1, 0})).numel() == 0);
}
