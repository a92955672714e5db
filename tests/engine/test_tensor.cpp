// Tensor basics: factories, views sharing storage, host copies, the RNG stream, and autograd's
// bookkeeping (leaf accumulation, graph freeing, no-grad, detach, input gradients).
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "kernels/philox.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <set>

using namespace flexnn;

TEST_CASE("factories fill shape, dtype and values", "[tensor]") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::Float32);
  for (float v : z.to_vector()) CHECK(v == 0.0f);
  Tensor f = Tensor::full({4}, 2.5f);
  for (float v : f.to_vector()) CHECK(v == 2.5f);
  CHECK(Tensor::arange(0, 5).to_vector() == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(Tensor::arange(1, 2, 0.25f).to_vector() == std::vector<float>{1, 1.25f, 1.5f, 1.75f});
  CHECK(Tensor::scalar(3.0f).item() == 3.0f);
  CHECK(Tensor::scalar(3.0f).dim() == 0);
  CHECK_THROWS_AS(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
  CHECK_THROWS_AS(Tensor::zeros({2}).item(), Error);
  CHECK_THROWS_AS(Tensor::zeros({-1}), Error);
}

TEST_CASE("reshape, view and flatten share storage", "[tensor]") {
  Tensor x = Tensor::arange(0, 24).reshape({2, 3, 4});
  Tensor v = x.view({6, -1});
  CHECK(v.shape() == Shape{6, 4});
  CHECK(v.raw_data() == x.raw_data());
  v.data<float>()[5] = 100.0f;
  CHECK(x.data<float>()[5] == 100.0f);
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.flatten().shape() == Shape{24});
  CHECK_THROWS_WITH(x.reshape({5, 5}), Catch::Contains("[2, 3, 4]") && Catch::Contains("[5, 5]"));
  CHECK_THROWS_AS(x.reshape({-1, -1}), Error);
}

TEST_CASE("slice along the batch is a view; concat copies", "[tensor]") {
  Tensor x = Tensor::arange(0, 12).reshape({4, 3});
  Tensor s = ops::slice(x, 0, 1, 3);
  CHECK(s.shape() == Shape{2, 3});
  CHECK(s.to_vector() == std::vector<float>{3, 4, 5, 6, 7, 8});
  CHECK(s.raw_data() == x.data<float>() + 3);
  Tensor c = ops::concat({ops::slice(x, 0, 2, 4), ops::slice(x, 0, 0, 1)});
  CHECK(c.to_vector() == std::vector<float>{6, 7, 8, 9, 10, 11, 0, 1, 2});
  CHECK(ops::slice(x, 1, 1, 2).to_vector() == std::vector<float>{1, 4, 7, 10});
  CHECK(ops::concat({x, x}, 1).shape() == Shape{4, 6});
  CHECK_THROWS_WITH(ops::concat({x, Tensor::zeros({4, 2})}), Catch::Contains("[4, 3]") && Catch::Contains("[4, 2]"));
  CHECK_THROWS_AS(ops::slice(x, 0, 3, 5), Error);
}

TEST_CASE("Philox4x32-10 matches Random123's known-answer vectors", "[rng]") {
  auto check = [](philox::Block counter, uint32_t k0, uint32_t k1, philox::Block expected) {
    const philox::Block got = philox::philox4x32_10(counter, k0, k1);
    for (int i = 0; i < 4; ++i) CHECK(got.x[i] == expected.x[i]);
  };
  check({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
  check({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
        {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
  check({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
        {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});
}

TEST_CASE("generator draws: reproducible, advancing, well distributed", "[rng]") {
  Generator a(7), b(7);
  Tensor u1 = Tensor::rand({1000}, a), u2 = Tensor::rand({1000}, b);
  CHECK(u1.to_vector() == u2.to_vector());
  CHECK(a.offset() == 250);
  Tensor u3 = Tensor::rand({1000}, a);
  CHECK(u3.to_vector() != u1.to_vector());
  // Uniform value i is word i % 4 of block offset + i / 4.
  CHECK(u1.to_vector()[6] == philox::to_unit(philox::generate(7, 1).x[2]));

  Generator g(11);
  const std::vector<float> n = Tensor::randn({200000}, g, 1.0f, 2.0f).to_vector();
  double mean = 0, var = 0;
  for (float v : n) mean += v;
  mean /= n.size();
  for (float v : n) var += (v - mean) * (v - mean);
  var /= n.size();
  CHECK(std::abs(mean - 1.0) < 0.02);
  CHECK(std::abs(std::sqrt(var) - 2.0) < 0.02);
  const std::vector<float> u = Tensor::rand({200000}, g, -1.0f, 3.0f).to_vector();
  double umean = 0;
  for (float v : u) {
    REQUIRE(v >= -1.0f);
    REQUIRE(v < 3.0f);
    umean += v;
  }
  CHECK(std::abs(umean / u.size() - 1.0) < 0.02);

  std::vector<int64_t> p = Generator(3).permutation(100);
  CHECK(std::set<int64_t>(p.begin(), p.end()).size() == 100);
  CHECK(p != Generator(4).permutation(100));
  CHECK(p == Generator(3).permutation(100));
}

TEST_CASE("autograd accumulates into leaves and frees the graph", "[autograd]") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).requires_grad_();
  Tensor y = ops::sum(x * x + x);  // dy/dx = 2x + 1
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{3, 5, 7});
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("already freed"));
  Tensor e = ops::exp(x);  // its node keeps a detached view of e's storage for the backward
  Tensor s = ops::sum(e);
  CHECK(e.impl().storage.use_count() == 2);
  s.backward();
  CHECK(e.impl().storage.use_count() == 1);
  x.set_grad(Tensor());
  y = ops::sum(x * x + x);
  y.backward();
  ops::sum(x * 2.0f).backward();  // accumulates
  CHECK(x.grad().to_vector() == std::vector<float>{5, 7, 9});
}

TEST_CASE("a tensor used twice receives the sum of both gradients", "[autograd]") {
  Tensor x = Tensor::from_vector(std::vector<float>{2}, {1}).requires_grad_();
  Tensor a = ops::exp(x);
  Tensor y = ops::sum(a * a + a);  // d/dx = 2 e^{2x} + e^x
  y.backward();
  CHECK(x.grad().item() == Approx(2 * std::exp(4.0) + std::exp(2.0)).epsilon(1e-6));
}

TEST_CASE("no-grad and detach stop recording; input gradients are first-class", "[autograd]") {
  Tensor w = Tensor::ones({3}).requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = w * 2.0f;
    CHECK_FALSE(y.requires_grad());
  }
  Tensor d = (w * 2.0f).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK_THROWS_AS(ops::sum(d).backward(), Error);

  Tensor image = Tensor::from_vector(std::vector<float>{0.2f, -0.4f, 0.9f}, {1, 3}).requires_grad_();
  Tensor weight = Tensor::from_vector(std::vector<float>{1, -2, 3, 0.5f, 0.5f, 0.5f}, {2, 3});
  Tensor logits = ops::linear(image, weight);
  ops::cross_entropy(logits, Tensor::from_indices({0}, {1})).backward();
  REQUIRE(image.grad().defined());
  CHECK_FALSE(weight.grad().defined());
  const std::vector<float> z = logits.to_vector();
  const double p0 = 1 / (1 + std::exp(z[1] - z[0]));
  const std::vector<float> g = image.grad().to_vector();
  for (int i = 0; i < 3; ++i) {  // d(-log p0)/dx = -(1 - p0) w0 + (1 - p0) w1
    const double expected = (1 - p0) * (weight.to_vector()[3 + i] - weight.to_vector()[i]);
    CHECK(g[i] == Approx(expected).epsilon(1e-5));
  }
}
