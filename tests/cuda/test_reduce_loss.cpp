// CUDA parity of the reductions (sum, mean, sum_to, max, argmax), log_softmax, cross_entropy,
// concat and slice against the CPU kernels: reductions over the first, middle and last dimensions
// and over several, keepdim, odd sizes, long reduced axes (the two-pass split sum), ties, NaN and
// infinities, gradients through every op; out-of-range targets and device-mismatch errors.
//
// Tolerances, with inputs in [-1, 1):
// - Copies, expansions, max/argmax and their backward move values without arithmetic (or scale by
//   the same float), so they must match bit for bit (kExact).
// - Sums: both backends add in double (the GPU along a fixed tree, the CPU in blocks) and round
//   once to float, so they differ by at most an ulp of the result: atol 1e-6 + rtol 1e-6 (a dropped
//   or doubled element is off by ~0.5).
// - log_softmax / cross_entropy: the GPU's expf differs from the CPU's by up to 2 ulps, and the GPU
//   keeps the row's sum of exp in float (rescaled as the running max grows) where the CPU uses
//   double, so values of size ~log(C) agree to ~1e-6 and gradients (softmax probabilities times sums
//   of dy of size <= ~sqrt(C)) to a few 1e-6: atol 1e-5 + rtol 1e-5 for both. The cross_entropy
//   loss is a mean in double of per-row terms, each off by ~1e-7: atol 1e-6 + rtol 1e-6; its
//   gradient, divided by N, atol 1e-6 + rtol 1e-5.
#include "engine/flexnn.hpp"
#include "kernels/cuda/memory.hpp"
#include "parity.hpp"
#include "random_values.hpp"
#include "test_helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace flexnn;
using flexnn::testing::bit_identical;
using flexnn::testing::error_message;
using flexnn::testing::random_values;
using flexnn::testing::require_close;
using flexnn::testing::require_parity;
using flexnn::testing::Tolerance;

namespace {

constexpr Tolerance kExact{0.0f, 0.0f};
constexpr Tolerance kSum{1e-6f, 1e-6f};
constexpr Tolerance kSoftmax{1e-5f, 1e-5f};
constexpr Tolerance kLoss{1e-6f, 1e-6f};
constexpr Tolerance kLossGradient{1e-6f, 1e-5f};
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor random_tensor(const Shape& shape, uint32_t seed, float scale = 1.0f) {
  std::vector<float> v = random_values(shape_numel(shape), seed);
  for (float& x : v) x *= scale;
  return Tensor::from_vector(v, shape);
}

// require_close, with equal infinities counting as a match (|inf - inf| is NaN there).
void require_close_or_equal(const Tensor& cuda, const Tensor& cpu, Tolerance tol, const std::string& what) {
  REQUIRE(cuda.device().is_cuda());
  REQUIRE(cuda.shape() == cpu.shape());
  std::vector<float> a = cuda.to(kCPU).to_vector(), b = cpu.to_vector();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::isinf(b[i]) && a[i] == b[i]) a[i] = b[i] = 0.0f;
  require_close(a, b, tol, what);
}

std::vector<int64_t> host_indices(const Tensor& t) {
  const Tensor on_cpu = t.to(kCPU);
  const int64_t* p = on_cpu.data<int64_t>();
  return std::vector<int64_t>(p, p + on_cpu.numel());
}

// Targets in [0, c) from the LCG.
Tensor random_targets(int64_t n, int64_t c, uint32_t seed) {
  std::vector<int64_t> t;
  for (float v : random_values(n, seed))
    t.push_back(std::min<int64_t>(c - 1, static_cast<int64_t>((v + 1.0f) * 0.5f * static_cast<float>(c))));
  return Tensor::from_indices(t, {n});
}

}  // namespace

TEST_CASE("CUDA sum and mean match the CPU over every dimension set, with keepdim", "[cuda][reduce]") {
  struct Case {
    Shape shape;
    std::vector<int64_t> dims;
  };
  const std::vector<Case> cases = {
      {{3, 5, 7}, {0}},    {{3, 5, 7}, {1}},          {{3, 5, 7}, {2}},  {{3, 5, 7}, {0, 2}}, {{3, 5, 7}, {1, 2}},
      {{3, 5, 7}, {0, 1}}, {{2, 3, 4, 5}, {0, 2, 3}}, {{1}, {0}},        {{4, 1, 33}, {1}},   {{17, 129}, {0}},
      {{17, 129}, {1}},    {{10, 3000}, {1}},         {{10, 3000}, {0}}, {{0, 5}, {1}},       {{5, 0}, {1}},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    int64_t terms = 1;
    for (int64_t d : c.dims) terms *= c.shape[d];
    const Tensor x = random_tensor(c.shape, seed++);
    for (bool keepdim : {false, true}) {
      INFO("shape " << shape_str(c.shape) << ", " << c.dims.size() << " dims from " << c.dims.front()
                    << (keepdim ? ", keepdim" : ""));
      require_parity([&](const std::vector<Tensor>& in) { return ops::sum(in[0], c.dims, keepdim); }, {x}, kSum,
                     kExact);
      if (terms > 0)
        require_parity([&](const std::vector<Tensor>& in) { return ops::mean(in[0], c.dims, keepdim); }, {x}, kSum,
                       kExact);
    }
  }
}

TEST_CASE("CUDA sum and mean of every element, including the split two-pass sums", "[cuda][reduce]") {
  // 50000 contiguous elements and columns of 6000 / 3000 rows run too few blocks unsplit, so the
  // reduced axis is cut into chunks and summed again.
  for (const Shape& shape : std::vector<Shape>{{1}, {7}, {255}, {257}, {3, 5, 7}, {50000}, Shape{}}) {
    INFO("shape " << shape_str(shape));
    const Tensor x = random_tensor(shape, 11);
    require_parity([](const std::vector<Tensor>& in) { return ops::sum(in[0]); }, {x}, kSum, kExact);
    require_parity([](const std::vector<Tensor>& in) { return ops::mean(in[0]); }, {x}, kSum, kExact);
  }
  for (const Shape& shape : std::vector<Shape>{{6000, 3}, {3000, 40}, {2, 9000}}) {
    INFO("shape " << shape_str(shape));
    const Tensor x = random_tensor(shape, 12);
    const int64_t dim = shape[0] > shape[1] ? 0 : 1;
    require_parity([dim](const std::vector<Tensor>& in) { return ops::sum(in[0], {dim}); }, {x}, kSum, kExact);
  }
}

TEST_CASE("CUDA sums are reproducible and propagate NaN and infinities like the CPU", "[cuda][reduce]") {
  Tensor x = random_tensor({6, 40}, 21);
  std::vector<float> v = x.to_vector();
  v[3 * 40 + 7] = kNaN;  // row 3: NaN
  v[4 * 40 + 1] = kInf;  // row 4: +inf
  v[5 * 40 + 2] = kInf;  // row 5: +inf - inf = NaN
  v[5 * 40 + 30] = -kInf;
  x = Tensor::from_vector(v, {6, 40});
  const Tensor on_cuda = x.to(kCUDA);
  for (int64_t dim : {0, 1}) {
    const Tensor cuda_sum = ops::sum(on_cuda, {dim});
    require_close_or_equal(cuda_sum, ops::sum(x, {dim}), kSum, "sum");
    CHECK(bit_identical(cuda_sum.to_vector(), ops::sum(on_cuda, {dim}).to_vector()));
  }
  const std::vector<float> rows = ops::sum(on_cuda, {1}).to_vector();
  CHECK(std::isnan(rows[3]));
  CHECK(rows[4] == kInf);
  CHECK(std::isnan(rows[5]));
  const Tensor big = random_tensor({50000}, 22).to(kCUDA);
  CHECK(bit_identical(ops::sum(big).to_vector(), ops::sum(big).to_vector()));
}

TEST_CASE("CUDA sum_to reduces broadcast gradients like the CPU", "[cuda][reduce]") {
  const Tensor x = random_tensor({4, 3, 5, 6}, 31);
  for (const Shape& target : std::vector<Shape>{{3, 1, 1}, {1, 6}, {6}, {4, 1, 5, 1}, {4, 3, 5, 6}, Shape{}}) {
    INFO("to " << shape_str(target));
    require_parity([&](const std::vector<Tensor>& in) { return ops::sum_to(in[0], target); }, {x}, kSum, kExact);
  }
  // Through broadcasting arithmetic: both operands' gradients are summed back on the device.
  require_parity([](const std::vector<Tensor>& in) { return ops::mul(ops::add(in[0], in[1]), in[2]); },
                 {random_tensor({4, 1, 5}, 32), random_tensor({3, 1}, 33), random_tensor({5}, 34)}, kSum, kSum);
}

TEST_CASE("CUDA max and argmax pick the CPU's first maximum, NaN first, over any dimension", "[cuda][reduce]") {
  // Values on a coarse grid so that ties are common.
  auto coarse = [](const Shape& shape, uint32_t seed) {
    std::vector<float> v = random_values(shape_numel(shape), seed);
    for (float& x : v) x = std::round(x * 3.0f);
    return Tensor::from_vector(v, shape);
  };
  Tensor special = coarse({5, 9}, 41);
  std::vector<float> v = special.to_vector();
  v[1 * 9 + 4] = kNaN;
  v[1 * 9 + 6] = kNaN;
  v[2 * 9 + 0] = kInf;
  for (int k = 0; k < 9; ++k) v[3 * 9 + k] = -kInf;  // all -inf: index 0
  v[4 * 9 + 2] = -0.0f;
  special = Tensor::from_vector(v, {5, 9});
  const std::vector<Tensor> inputs = {
      coarse({3, 5, 7}, 42),         coarse({10, 3000}, 43), coarse({1}, 44), coarse({300, 2}, 45), special,
      random_tensor({2, 600, 3}, 46)};
  for (const Tensor& x : inputs) {
    for (int64_t dim = 0; dim < x.dim(); ++dim) {
      for (bool keepdim : {false, true}) {
        INFO("shape " << shape_str(x.shape()) << ", dim " << dim << (keepdim ? ", keepdim" : ""));
        const ops::MaxResult cpu = ops::max(x, dim, keepdim);
        const ops::MaxResult on_cuda = ops::max(x.to(kCUDA), dim, keepdim);
        REQUIRE(on_cuda.indices.device().is_cuda());
        REQUIRE(on_cuda.indices.shape() == cpu.indices.shape());
        CHECK(host_indices(on_cuda.indices) == host_indices(cpu.indices));
        CHECK(host_indices(ops::argmax(x.to(kCUDA), dim, keepdim)) == host_indices(cpu.indices));
        require_close_or_equal(on_cuda.values, cpu.values, kExact, "max values");
        // The gradient goes to the chosen elements only.
        Tensor x_cpu = x.clone(), x_cuda = x.to(kCUDA).detach();
        x_cpu.requires_grad_();
        x_cuda.requires_grad_();
        const Tensor g = random_tensor(cpu.values.shape(), 47);
        ops::max(x_cpu, dim, keepdim).values.backward(g);
        ops::max(x_cuda, dim, keepdim).values.backward(g.to(kCUDA));
        require_close(x_cuda.grad(), x_cpu.grad(), kExact, "max gradient");
      }
    }
  }
}

TEST_CASE("CUDA log_softmax matches the CPU over any dimension, stable for large logits", "[cuda][softmax]") {
  struct Case {
    Shape shape;
    int64_t dim;
    float scale;
  };
  const std::vector<Case> cases = {
      {{3, 5, 7}, 0, 1.0f}, {{3, 5, 7}, 1, 1.0f}, {{3, 5, 7}, 2, 1.0f}, {{10, 3000}, 1, 5.0f},   {{10, 3000}, 0, 5.0f},
      {{1}, 0, 1.0f},       {{33, 1}, 1, 1.0f},   {{7, 300}, -1, 1e4f}, {{2, 40, 3}, 1, 100.0f}, {{0, 4}, 1, 1.0f}};
  uint32_t seed = 51;
  for (const Case& c : cases) {
    INFO("shape " << shape_str(c.shape) << ", dim " << c.dim << ", logits scaled by " << c.scale);
    require_parity([&](const std::vector<Tensor>& in) { return ops::log_softmax(in[0], c.dim); },
                   {random_tensor(c.shape, seed++, c.scale)}, kSoftmax, kSoftmax);
  }
}

TEST_CASE("CUDA log_softmax treats NaN and infinities like the CPU", "[cuda][softmax]") {
  std::vector<float> v = random_values(6 * 5, 61);
  v[0 * 5 + 2] = kNaN;   // row 0: all NaN
  v[1 * 5 + 1] = kInf;   // row 1: NaN (inf - inf)
  v[2 * 5 + 0] = -kInf;  // row 2: a -inf logit is -inf
  v[2 * 5 + 3] = -kInf;
  for (int k = 0; k < 5; ++k) v[3 * 5 + k] = -kInf;  // row 3: all -inf, NaN
  v[4 * 5 + 4] = 3e38f;                              // row 4: huge but finite
  const Tensor x = Tensor::from_vector(v, {6, 5});
  const Tensor on_cpu = ops::log_softmax(x, 1), on_cuda = ops::log_softmax(x.to(kCUDA), 1);
  const std::vector<float> cuda = on_cuda.to_vector();
  require_close_or_equal(on_cuda, on_cpu, kSoftmax, "log_softmax");
  CHECK(std::isnan(cuda[0]));
  CHECK(std::isnan(cuda[5]));
  CHECK(cuda[10] == -kInf);
  CHECK(std::isfinite(cuda[11]));
  CHECK(std::isnan(cuda[15]));
  CHECK(cuda[24] == 0.0f);
}

TEST_CASE("CUDA cross_entropy matches the CPU's loss and gradient, on the device", "[cuda][softmax]") {
  struct Case {
    int64_t n, c;
    float scale;
  };
  uint32_t seed = 71;
  for (const Case& c : std::vector<Case>{
           {1, 1, 1.0f}, {7, 3, 1.0f}, {64, 10, 4.0f}, {10, 3000, 3.0f}, {300, 17, 1.0f}, {5, 6, 1e4f}, {0, 4, 1.0f}}) {
    INFO(c.n << " rows of " << c.c << " classes, logits scaled by " << c.scale);
    const Tensor logits = random_tensor({c.n, c.c}, seed++, c.scale);
    const Tensor targets = random_targets(c.n, c.c, seed++);
    require_parity([](const std::vector<Tensor>& in) { return ops::cross_entropy(in[0], in[1]); }, {logits, targets},
                   kLoss, kLossGradient);
    const Tensor loss = ops::cross_entropy(logits.to(kCUDA), targets.to(kCUDA));
    CHECK(loss.device().is_cuda());
    CHECK(loss.shape() == Shape{});
  }
  // Through a larger graph: the mean of two losses, backward on the device.
  require_parity(
      [](const std::vector<Tensor>& in) {
        const Tensor logits = ops::log_softmax(in[0], 1);
        return ops::mean(ops::concat(
            {ops::cross_entropy(in[0], in[1]).reshape({1}), ops::mul(ops::sum(logits), -1e-3f).reshape({1})}));
      },
      {random_tensor({9, 11}, 81, 2.0f), random_targets(9, 11, 82)}, kLoss, kLossGradient);
}

TEST_CASE("CUDA cross_entropy reports out-of-range targets", "[cuda][softmax]") {
  const Tensor logits = random_tensor({4, 10}, 91).to(kCUDA);
  const Tensor good = Tensor::from_indices({3, 0, 1, 9}, {4}, kCUDA);
  // The op does not wait for the device: the call itself reports a bad target when the device has
  // finished its kernels by then (always on the emulator), else the next call once it has.
  auto bad_target_error = [&](const std::vector<int64_t>& targets) {
    std::string message = error_message([&] { ops::cross_entropy(logits, Tensor::from_indices(targets, {4}, kCUDA)); });
    if (message.find("(no flexnn::Error") == std::string::npos) return message;
    cuda::synchronize();
    return error_message([&] { ops::cross_entropy(logits, good); });
  };
  for (int64_t bad : {10, -1, 1000}) {
    const std::string message = bad_target_error({3, 0, bad, 9});
    INFO(message);
    CHECK(message.find("cross_entropy") != std::string::npos);
    CHECK(message.find("target " + std::to_string(bad) + " at index 2") != std::string::npos);
    CHECK(message.find("out of range") != std::string::npos);
  }
  // Two bad rows: the first is named; the record is cleared, so valid targets then pass.
  CHECK(bad_target_error({3, 12, 0, -5}).find("target 12 at index 1") != std::string::npos);
  const Tensor loss = ops::cross_entropy(logits, good);
  CHECK(std::isfinite(loss.item()));
  CHECK(error_message([&] { ops::cross_entropy(logits, good); }) == "(no flexnn::Error thrown)");
  // The CPU keeps its own check.
  CHECK(error_message([&] {
          ops::cross_entropy(logits.to(kCPU), Tensor::from_indices({3, 0, 10, 9}, {4}));
        }).find("target 10 at index 2 is out of range for 10 classes") != std::string::npos);
}

TEST_CASE("CUDA concat and slice match the CPU, dimension-0 slices stay views", "[cuda][join]") {
  const Tensor a = random_tensor({2, 3, 5}, 101), b = random_tensor({2, 4, 5}, 102), c = random_tensor({2, 1, 5}, 103);
  require_parity([](const std::vector<Tensor>& in) { return ops::concat(in, 1); }, {a, b, c}, kExact, kExact);
  require_parity([](const std::vector<Tensor>& in) { return ops::concat(in, 0); },
                 {random_tensor({3, 7}, 104), random_tensor({1, 7}, 105)}, kExact, kExact);
  require_parity([](const std::vector<Tensor>& in) { return ops::concat(in, -1); },
                 {random_tensor({3, 2, 3}, 106), random_tensor({3, 2, 6}, 107), random_tensor({3, 2, 0}, 108)}, kExact,
                 kExact);
  const Tensor x = random_tensor({6, 9, 7}, 109);
  for (int64_t dim = 0; dim < 3; ++dim) {
    for (const auto& [start, end] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 5}, {2, 6}, {3, 3}}) {
      INFO("slice dim " << dim << " [" << start << ", " << end << ")");
      require_parity([&](const std::vector<Tensor>& in) { return ops::slice(in[0], dim, start, end); }, {x}, kExact,
                     kExact);
    }
  }
  const Tensor on_cuda = x.to(kCUDA);
  const Tensor view = ops::slice(on_cuda, 0, 2, 4);
  CHECK(view.impl().storage == on_cuda.impl().storage);
}

TEST_CASE("CUDA reductions, losses and joins reject tensors on different devices", "[cuda][reduce]") {
  const Tensor logits = random_tensor({3, 4}, 111).to(kCUDA);
  const Tensor targets = Tensor::from_indices({0, 1, 3}, {3});
  std::string message = error_message([&] { ops::cross_entropy(logits, targets); });
  INFO(message);
  CHECK(message.find("cross_entropy") != std::string::npos);
  CHECK(message.find("cuda") != std::string::npos);
  CHECK(message.find("cpu") != std::string::npos);
  message = error_message([&] { ops::concat({random_tensor({2, 4}, 112), logits}); });
  INFO(message);
  CHECK(message.find("concat") != std::string::npos);
  CHECK(message.find("cuda") != std::string::npos);
  CHECK(message.find("cpu") != std::string::npos);
}
