// CUDA parity of the GEMM-backed and windowed ops against the CPU kernels: matmul, linear,
// conv2d (outputs and the gradients of input, weight and bias) over strides, paddings, kernel
// sizes, channel counts and image groupings, and max / avg pooling over windows, strides, padding,
// ceil_mode, ties, infinities and NaN; the TF32 switch; device-mismatch errors.
//
// Tolerances: the pools compare and add in the CPU's order, so they must match exactly (0). The
// GEMM-backed ops sum in cuBLAS's order instead of the CPU GEMM's (and the convolution's weight
// gradient over groups of images): with operands in [-1, 1] and sums of at most a few hundred
// products, the difference is a few ulps of the largest partial sum. The emulator (whose cuBLAS is
// the CPU GEMM) stays within 2e-6; a GPU's blocking and FMAs differ more, hence atol 2e-5 +
// rtol 2e-5, still far below what a wrong index or a missing tap costs (about 0.1 or more).
#include "engine/flexnn.hpp"
#include "kernels/cuda/conv2d.hpp"
#include "kernels/cuda/gemm.hpp"
#include "parity.hpp"
#include "random_values.hpp"
#include "test_helpers.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>

using namespace flexnn;
using flexnn::ops::Size2;
using flexnn::testing::bit_identical;
using flexnn::testing::error_message;
using flexnn::testing::random_values;
using flexnn::testing::require_parity;
using flexnn::testing::Tolerance;

namespace {

constexpr Tolerance kGemm{2e-5f, 2e-5f};
constexpr Tolerance kExact{0.0f, 0.0f};

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  return Tensor::from_vector(random_values(shape_numel(shape), seed), shape);
}

struct ConvCase {
  int64_t n, c_in, h, w, c_out, kh, kw;
  Size2 stride, padding;
  bool bias;
};

void require_conv_parity(const ConvCase& c, uint32_t seed) {
  INFO("conv2d x [" << c.n << ", " << c.c_in << ", " << c.h << ", " << c.w << "], weight [" << c.c_out << ", "
                    << c.c_in << ", " << c.kh << ", " << c.kw << "], stride " << c.stride.h << "x" << c.stride.w
                    << ", padding " << c.padding.h << "x" << c.padding.w << (c.bias ? ", bias" : ""));
  std::vector<Tensor> inputs = {random_tensor({c.n, c.c_in, c.h, c.w}, seed),
                                random_tensor({c.c_out, c.c_in, c.kh, c.kw}, seed + 1)};
  if (c.bias) inputs.push_back(random_tensor({c.c_out}, seed + 2));
  require_parity(
      [&](const std::vector<Tensor>& in) {
        return ops::conv2d(in[0], in[1], c.bias ? in[2] : Tensor(), c.stride, c.padding);
      },
      inputs, kGemm, kGemm);
}

// Restores the process-wide CUDA settings a test changes.
struct CudaSettingsGuard {
  bool tf32 = cuda::allow_tf32();
  int64_t workspace_limit = cuda::conv2d_workspace_limit();
  ~CudaSettingsGuard() {
    cuda::set_allow_tf32(tf32);
    cuda::set_conv2d_workspace_limit(workspace_limit);
  }
};

}  // namespace

TEST_CASE("CUDA matmul matches the CPU, values and gradients", "[cuda][conv_pool_linear]") {
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {2, 300, 3}, {64, 8, 1}};
  uint32_t seed = 1;
  for (const auto& [m, k, n] : sizes) {
    INFO("matmul [" << m << ", " << k << "] x [" << k << ", " << n << "]");
    require_parity([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                   {random_tensor({m, k}, seed), random_tensor({k, n}, seed + 1)}, kGemm, kGemm);
    seed += 2;
  }
}

TEST_CASE("CUDA matmul with an empty inner dimension gives zeros", "[cuda][conv_pool_linear]") {
  const Tensor a = Tensor::empty({3, 0}, DType::Float32, kCUDA), b = Tensor::empty({0, 4}, DType::Float32, kCUDA);
  CHECK(bit_identical(ops::matmul(a, b).to(kCPU).to_vector(), std::vector<float>(12, 0.0f)));
}

TEST_CASE("CUDA linear matches the CPU, with and without bias", "[cuda][conv_pool_linear]") {
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {5, 9, 3}, {37, 20, 11}, {3, 70, 40}};
  uint32_t seed = 11;
  for (const auto& [batch, in, out] : sizes) {
    for (const bool bias : {true, false}) {
      INFO("linear x [" << batch << ", " << in << "], weight [" << out << ", " << in << "]" << (bias ? ", bias" : ""));
      std::vector<Tensor> inputs = {random_tensor({batch, in}, seed), random_tensor({out, in}, seed + 1)};
      if (bias) inputs.push_back(random_tensor({out}, seed + 2));
      require_parity(
          [bias](const std::vector<Tensor>& v) { return ops::linear(v[0], v[1], bias ? v[2] : Tensor()); }, inputs,
          kGemm, kGemm);
      seed += 3;
    }
  }
}

TEST_CASE("CUDA conv2d matches the CPU over strides, paddings and kernel sizes", "[cuda][conv_pool_linear]") {
  const std::vector<ConvCase> cases = {
      {2, 3, 7, 9, 4, 3, 3, 1, 1, true},             // 3x3 "same"
      {3, 1, 8, 8, 5, 5, 5, 1, 2, true},             // 5x5, one input channel, batch 3
      {2, 4, 6, 5, 3, 1, 1, 1, 0, true},             // pointwise: no im2col
      {1, 4, 5, 7, 2, 1, 1, 1, 0, false},            // pointwise, one image
      {1, 3, 5, 5, 2, 1, 1, 2, 0, true},             // 1x1 but strided: inputs no tap reads
      {3, 2, 9, 7, 3, 3, 2, {2, 1}, {1, 0}, false},  // rectangular kernel, per-axis stride and padding
      {2, 2, 11, 10, 3, 4, 3, 3, {2, 1}, false},     // stride 3, windows overlapping by one row
      {3, 5, 4, 4, 6, 3, 3, 1, 0, true},             // 2x2 output planes
      {2, 2, 3, 3, 2, 5, 5, 1, 1, true},             // kernel as large as the padded input: 1x1 output
      {1, 6, 13, 11, 7, 3, 3, 2, 1, true},           // odd sizes, stride 2
      {0, 3, 5, 5, 2, 3, 3, 1, 1, true},             // no images: empty output, zero weight and bias gradients
  };
  uint32_t seed = 100;
  for (const ConvCase& c : cases) require_conv_parity(c, seed += 3);
}

TEST_CASE("CUDA conv2d over several image groups matches the CPU", "[cuda][conv_pool_linear]") {
  CudaSettingsGuard restore;
  // Workspace limits of one image's scratch, then of two: the weight gradient adds the groups one
  // after another, and a last group may hold a single image.
  const std::vector<ConvCase> cases = {{5, 3, 6, 7, 4, 3, 3, 1, 1, true}, {3, 2, 5, 5, 3, 1, 1, 1, 0, true}};
  for (const int64_t images : {1, 2}) {
    for (const ConvCase& c : cases) {
      const Conv2dShape s{c.n, c.c_in, c.h, c.w, c.c_out, c.kh, c.kw, 1, 1, c.padding.h, c.padding.w,
                          c.h + 2 * c.padding.h - c.kh + 1, c.w + 2 * c.padding.w - c.kw + 1};
      const int64_t limit = images * (s.col_rows() + s.c_out) * s.out_plane();
      INFO(images << " image(s) per group");
      cuda::set_conv2d_workspace_limit(limit);
      CHECK(cuda::conv2d_workspace_size(s) == limit);
      require_conv_parity(c, 7);
    }
  }
}

TEST_CASE("CUDA conv2d gradients are reproducible", "[cuda][conv_pool_linear]") {
  const Tensor x0 = random_tensor({3, 4, 9, 8}, 5).to(kCUDA), w0 = random_tensor({5, 4, 3, 3}, 6).to(kCUDA);
  const Tensor b0 = random_tensor({5}, 7).to(kCUDA);
  const auto gradients = [&] {
    Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    ops::sum(ops::mul(ops::conv2d(x, w, b, 2, 1), ops::conv2d(x, w, b, 2, 1))).backward();
    return std::vector<std::vector<float>>{x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()};
  };
  CHECK(gradients() == gradients());
}

TEST_CASE("CUDA max_pool2d matches the CPU bit for bit, indices and gradients", "[cuda][conv_pool_linear]") {
  struct PoolCase {
    int64_t n, c, h, w;
    Size2 kernel;
    std::optional<Size2> stride;
    Size2 padding;
    bool ceil_mode;
  };
  const std::vector<PoolCase> cases = {
      {2, 3, 8, 8, 2, std::nullopt, 0, false},  // the common 2x2
      {1, 2, 7, 9, 3, Size2(2), 1, false},       // overlapping windows, padding
      {2, 2, 7, 9, 3, Size2(2), 1, true},        // ... with ceil_mode
      {3, 1, 10, 7, {3, 2}, Size2(3, 1), {1, 0}, true},
      {1, 3, 5, 6, 2, Size2(3), 1, true},        // stride past the kernel: gaps between windows
      {1, 1, 1, 1, 1, std::nullopt, 0, false},   // one element
  };
  // Values on a coarse grid make ties; the first maximum in window order must win on both devices.
  const auto grid_values = [](const Shape& shape, uint32_t seed) {
    std::vector<float> v = random_values(shape_numel(shape), seed);
    for (float& x : v) x = std::round(x * 2.0f) / 2.0f;
    return Tensor::from_vector(v, shape);
  };
  uint32_t seed = 40;
  for (const PoolCase& c : cases) {
    INFO("max_pool2d x [" << c.n << ", " << c.c << ", " << c.h << ", " << c.w << "], kernel " << c.kernel.h << "x"
                          << c.kernel.w << ", padding " << c.padding.h << "x" << c.padding.w
                          << (c.ceil_mode ? ", ceil_mode" : ""));
    const auto pool = [&](const std::vector<Tensor>& in) {
      return ops::max_pool2d(in[0], c.kernel, c.stride, c.padding, c.ceil_mode);
    };
    require_parity(pool, {random_tensor({c.n, c.c, c.h, c.w}, seed++)}, kExact, kExact);
    require_parity(pool, {grid_values({c.n, c.c, c.h, c.w}, seed++)}, kExact, kExact);
  }
}

TEST_CASE("CUDA max_pool2d treats NaN and infinities as the CPU does", "[cuda][conv_pool_linear]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = random_values(2 * 6 * 6, 3);
  v[0] = nan;  // a NaN first in its window
  v[8] = nan;  // two NaNs in one window: the later one takes the gradient
  v[9] = nan;
  v[20] = inf;
  for (int i = 36; i < 72; ++i) v[i] = -inf;  // a plane of -inf: the gradient goes to each window's first element
  v[50] = nan;
  // require_parity's |difference| is NaN for equal infinities: compare values for equality here.
  const auto same = [](const std::vector<float>& cuda, const std::vector<float>& cpu) {
    REQUIRE(cuda.size() == cpu.size());
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      INFO("element " << i << ": cuda " << cuda[i] << ", cpu " << cpu[i]);
      CHECK((cuda[i] == cpu[i] || (std::isnan(cuda[i]) && std::isnan(cpu[i]))));
    }
  };
  for (const bool ceil_mode : {false, true}) {
    for (const auto& [kernel, padding] : {std::pair<int64_t, int64_t>{3, 1}, {2, 0}, {3, 0}}) {
      INFO("kernel " << kernel << ", stride 2, padding " << padding << (ceil_mode ? ", ceil_mode" : ""));
      Tensor on_cpu = Tensor::from_vector(v, {1, 2, 6, 6}).requires_grad_(true);
      Tensor on_cuda = Tensor::from_vector(v, {1, 2, 6, 6}, kCUDA).requires_grad_(true);
      const Tensor y_cpu = ops::max_pool2d(on_cpu, kernel, Size2(2), padding, ceil_mode);
      const Tensor y_cuda = ops::max_pool2d(on_cuda, kernel, Size2(2), padding, ceil_mode);
      same(y_cuda.to(kCPU).to_vector(), y_cpu.to_vector());
      const std::vector<float> g = random_values(y_cpu.numel(), 4);
      y_cpu.backward(Tensor::from_vector(g, y_cpu.shape()));
      y_cuda.backward(Tensor::from_vector(g, y_cpu.shape(), kCUDA));
      same(on_cuda.grad().to(kCPU).to_vector(), on_cpu.grad().to_vector());
    }
  }
}

TEST_CASE("CUDA avg_pool2d matches the CPU bit for bit, both padding counts", "[cuda][conv_pool_linear]") {
  struct PoolCase {
    int64_t n, c, h, w;
    Size2 kernel;
    std::optional<Size2> stride;
    Size2 padding;
    bool ceil_mode;
  };
  const std::vector<PoolCase> cases = {
      {2, 3, 8, 8, 2, std::nullopt, 0, false},
      {1, 2, 7, 9, 3, Size2(2), 1, false},
      {2, 2, 7, 9, 3, Size2(2), 1, true},  // ceil_mode windows cut at the padding
      {3, 1, 10, 7, {3, 2}, Size2(3, 1), {1, 0}, true},
      {1, 3, 5, 6, 2, Size2(3), 1, true},
      {1, 2, 9, 9, 5, Size2(1), 2, false},  // heavy overlap: each input in up to 25 windows
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  uint32_t seed = 70;
  for (const PoolCase& c : cases) {
    for (const bool count_include_pad : {true, false}) {
      INFO("avg_pool2d x [" << c.n << ", " << c.c << ", " << c.h << ", " << c.w << "], kernel " << c.kernel.h << "x"
                            << c.kernel.w << ", padding " << c.padding.h << "x" << c.padding.w
                            << (c.ceil_mode ? ", ceil_mode" : "") << (count_include_pad ? ", count_include_pad" : ""));
      std::vector<float> v = random_values(c.n * c.c * c.h * c.w, seed++);
      v[v.size() / 2] = nan;  // spreads to every window that holds it
      require_parity(
          [&](const std::vector<Tensor>& in) {
            return ops::avg_pool2d(in[0], c.kernel, c.stride, c.padding, c.ceil_mode, count_include_pad);
          },
          {Tensor::from_vector(v, {c.n, c.c, c.h, c.w})}, kExact, kExact);
    }
  }
}

TEST_CASE("the TF32 switch is accepted and GEMMs stay within the fp32 tolerance", "[cuda][conv_pool_linear]") {
  CudaSettingsGuard restore;
  CHECK_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  // The emulator computes fp32 either way. On a GPU, TF32 rounds operands to 10 mantissa bits,
  // which small integers survive exactly, so the fp32 tolerance holds there too.
  const auto small_integers = [](const Shape& shape, uint32_t seed) {
    std::vector<float> v = random_values(shape_numel(shape), seed);
    for (float& x : v) x = std::round(x * 8.0f);
    return Tensor::from_vector(v, shape);
  };
  require_parity([](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); },
                 {small_integers({9, 31}, 1), small_integers({31, 6}, 2)}, kGemm, kGemm);
  require_parity([](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], 1, 1); },
                 {small_integers({2, 3, 6, 6}, 3), small_integers({4, 3, 3, 3}, 4), small_integers({4}, 5)}, kGemm,
                 kGemm);
  cuda::set_allow_tf32(false);
  CHECK_FALSE(cuda::allow_tf32());
}

TEST_CASE("GEMM-backed ops name the op and both devices on a device mismatch", "[cuda][conv_pool_linear]") {
  const Tensor host = random_tensor({2, 3}, 1), device = random_tensor({3, 3}, 2).to(kCUDA);
  const Tensor image = random_tensor({1, 3, 5, 5}, 4), weight = random_tensor({2, 3, 3, 3}, 5).to(kCUDA);
  const std::vector<std::pair<const char*, std::function<void()>>> calls = {
      {"matmul", [&] { ops::matmul(host, device); }},
      {"linear", [&] { ops::linear(host, device); }},
      {"linear", [&] { ops::linear(host.to(kCUDA), device, random_tensor({3}, 3)); }},  // the bias alone on the CPU
      {"conv2d", [&] { ops::conv2d(image, weight); }},
      {"conv2d", [&] { ops::conv2d(image.to(kCUDA), weight, random_tensor({2}, 6)); }},
  };
  for (const auto& [op, call] : calls) {
    const std::string message = error_message(call);
    INFO(message);
    CHECK(message.find(op) != std::string::npos);
    CHECK(message.find("cpu") != std::string::npos);
    CHECK(message.find("cuda") != std::string::npos);
  }
}
