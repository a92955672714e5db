// CUDA parity tests of batch_norm, dropout / dropout2d and the SGD step against the CPU kernels:
// batch_norm forward and backward in training and evaluation, 1d and 2d, running statistics over
// several steps and BatchNorm's counter on the device; dropout masks and gradients bit for bit
// equal to the CPU's for the same generator state; several SGD steps over two groups and more
// tensors than one launch takes; device mismatches.
//
// Tolerances (|cuda - cpu| <= atol + rtol * |cpu|):
// - batch_norm statistics are summed in double on both devices, differing only in summation
//   order, so mean / invstd / running statistics agree to float rounding: 1e-6.
// - batch_norm forward: y = (x - mean) * scale + shift may be contracted to an FMA on one device
//   and not the other (about one ulp of values of order 1): 2e-6.
// - batch_norm backward: dx = k * (dy - mean(dy) - xhat * c) cancels terms of order 1, so the
//   FMA differences show at about 1e-7 absolute; dweight / dbias are double sums: 1e-5.
// - dropout: exact (the same Philox words, one float multiply; any NaN matches a NaN).
// - SGD: per step a few float operations whose FMA contraction may differ (about 1e-7 on
//   parameters of order 1), accumulated over the steps: 1e-6.
#include "engine/generator.hpp"
#include "engine/nn/layers.hpp"
#include "engine/ops.hpp"
#include "engine/optim/sgd.hpp"
#include "parity.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

using namespace flexnn;
using flexnn::testing::require_close;
using flexnn::testing::require_parity;
using flexnn::testing::Tolerance;

namespace {

constexpr Tolerance kStats{1e-6f, 1e-6f};
constexpr Tolerance kBatchNormForward{2e-6f, 2e-6f};
constexpr Tolerance kBatchNormBackward{1e-5f, 1e-5f};
constexpr Tolerance kSgd{1e-6f, 1e-6f};

// The shapes of the batch_norm tests: 1d, 2d and [N, C, L], rows shorter and longer than a block,
// a channel of more values than a block has threads, and odd sizes throughout.
const std::vector<Shape> kBatchNormShapes{{7, 5}, {2, 3}, {3, 4, 5, 7}, {2, 3, 300}, {4, 3, 19, 23}, {1, 2, 1, 3}};

// Bit-for-bit equality of a CUDA tensor and a CPU tensor, NaN matching any NaN (a GPU writes its
// own canonical NaN where the CPU propagates an operand's).
void require_identical(const Tensor& cuda, const Tensor& cpu, const std::string& what) {
  REQUIRE(cuda.device().is_cuda());
  REQUIRE(cuda.shape() == cpu.shape());
  const std::vector<float> a = cuda.to(kCPU).to_vector(), b = cpu.to_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    uint32_t bits_a, bits_b;
    std::memcpy(&bits_a, &a[i], sizeof(float));
    std::memcpy(&bits_b, &b[i], sizeof(float));
    if (bits_a != bits_b) FAIL(what << "[" << i << "]: cuda " << a[i] << ", cpu " << b[i]);
  }
}

}  // namespace

// ---- batch_norm -----------------------------------------------------------------------------

TEST_CASE("CUDA batch_norm in training matches the CPU, forward and backward", "[cuda][batch_norm]") {
  Generator gen(31);
  for (const Shape& shape : kBatchNormShapes) {
    const int64_t c = shape[1];
    for (bool affine : {true, false}) {
      DYNAMIC_SECTION("shape " << shape_str(shape) << " affine " << affine) {
        const Tensor x = ops::add(Tensor::randn(shape, gen, 0.0f, 2.0f), 1.5f);
        const std::vector<Tensor> inputs =
            affine ? std::vector<Tensor>{x, Tensor::rand({c}, gen, 0.5f, 1.5f), Tensor::randn({c}, gen)}
                   : std::vector<Tensor>{x};
        require_parity(
            [&](const std::vector<Tensor>& in) {
              const Tensor none;
              return ops::batch_norm(in[0], none, none, affine ? in[1] : none, affine ? in[2] : none, true, 0.1f,
                                     1e-5f);
            },
            inputs, kBatchNormForward, kBatchNormBackward);
      }
    }
  }
}

TEST_CASE("CUDA batch_norm in evaluation matches the CPU, forward and backward", "[cuda][batch_norm]") {
  Generator gen(32);
  for (const Shape& shape : kBatchNormShapes) {
    const int64_t c = shape[1];
    const Tensor running_mean = Tensor::randn({c}, gen), running_var = Tensor::rand({c}, gen, 0.5f, 2.0f);
    const std::vector<Tensor> inputs{Tensor::randn(shape, gen), Tensor::rand({c}, gen, 0.5f, 1.5f),
                                     Tensor::randn({c}, gen)};
    const auto f = [&](const std::vector<Tensor>& in) {
      const Device device = in[0].device();
      return ops::batch_norm(in[0], running_mean.to(device), running_var.to(device), in[1], in[2], false, 0.1f,
                             1e-3f);
    };
    DYNAMIC_SECTION("shape " << shape_str(shape) << ", gradients of x, weight and bias") {
      require_parity(f, inputs, kBatchNormForward, kBatchNormBackward);
    }
    DYNAMIC_SECTION("shape " << shape_str(shape) << ", gradient of x only") {  // no per-channel sums
      require_parity(f, inputs, kBatchNormForward, kBatchNormBackward, {true, false, false});
    }
  }
}

TEST_CASE("CUDA batch_norm running statistics follow the CPU's over several steps", "[cuda][batch_norm]") {
  Generator gen(33);
  for (const Shape& shape : {Shape{9, 6}, Shape{3, 5, 11, 13}}) {
    const int64_t c = shape[1];
    Tensor mean_cpu = Tensor::randn({c}, gen), var_cpu = Tensor::rand({c}, gen, 0.5f, 2.0f);
    Tensor mean_cuda = mean_cpu.to(kCUDA), var_cuda = var_cpu.to(kCUDA);
    for (int step = 0; step < 4; ++step) {
      const Tensor x = ops::add(Tensor::randn(shape, gen, 0.0f, 1.0f + step), static_cast<float>(step));
      ops::batch_norm(x, mean_cpu, var_cpu, {}, {}, true, 0.2f, 1e-5f);
      ops::batch_norm(x.to(kCUDA), mean_cuda, var_cuda, {}, {}, true, 0.2f, 1e-5f);
    }
    require_close(mean_cuda, mean_cpu, kStats, "running_mean " + shape_str(shape));
    require_close(var_cuda, var_cpu, kStats, "running_var " + shape_str(shape));
    // Evaluation with the updated statistics.
    const Tensor x = Tensor::randn(shape, gen);
    require_close(ops::batch_norm(x.to(kCUDA), mean_cuda, var_cuda, {}, {}, false, 0.2f, 1e-5f),
                  ops::batch_norm(x, mean_cpu, var_cpu, {}, {}, false, 0.2f, 1e-5f), kBatchNormForward,
                  "evaluation output " + shape_str(shape));
  }
}

TEST_CASE("CUDA BatchNorm counts its training batches on the device", "[cuda][batch_norm]") {
  nn::BatchNorm2d bn(3);
  bn.to(kCUDA);
  REQUIRE(bn.num_batches_tracked.device().is_cuda());
  Generator gen(34);
  const Tensor x = Tensor::randn({2, 3, 4, 5}, gen, 0.0f, 1.0f, kCUDA);
  bn(x);
  bn(x);
  bn.eval();
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 2.0f);
}

TEST_CASE("CUDA batch_norm rejects per-channel tensors on another device", "[cuda][batch_norm]") {
  Generator gen(35);
  const Tensor x = Tensor::randn({4, 3}, gen, 0.0f, 1.0f, kCUDA);
  CHECK_THROWS_WITH(ops::batch_norm(x, {}, {}, Tensor::ones({3}), {}, true),
                    Catch::Contains("batch_norm") && Catch::Contains("cuda") && Catch::Contains("cpu"));
  CHECK_THROWS_WITH(ops::batch_norm(x, Tensor::zeros({3}), Tensor::ones({3}), {}, {}, false),
                    Catch::Contains("batch_norm") && Catch::Contains("cuda") && Catch::Contains("cpu"));
}

// ---- dropout --------------------------------------------------------------------------------

namespace {

// Runs `op` (dropout or dropout2d) on the CPU and on CUDA from the same generator state and
// requires the outputs, the input gradients and the generators' states to be identical.
void require_same_mask(Tensor (*op)(const Tensor&, float, bool, Generator&), const Shape& shape, float p) {
  Generator data(36);
  Tensor x = Tensor::randn(shape, data);
  if (x.numel() > 2) {  // NaN and infinity are multiplied like any value (NaN stays NaN when dropped)
    std::vector<float> v = x.to_vector();
    v[1] = std::numeric_limits<float>::quiet_NaN();
    v[2] = -std::numeric_limits<float>::infinity();
    x = Tensor::from_vector(v, shape);
  }
  Generator gen_cpu(1234), gen_cuda(1234);
  gen_cpu.reserve(5);  // a stream position that is not a multiple of anything in particular
  gen_cuda.reserve(5);
  const Tensor x_cpu = x.clone().requires_grad_(), x_cuda = x.to(kCUDA).detach().requires_grad_();
  const Tensor y_cpu = op(x_cpu, p, true, gen_cpu), y_cuda = op(x_cuda, p, true, gen_cuda);
  require_identical(y_cuda, y_cpu, "output");
  CHECK(gen_cuda.offset() == gen_cpu.offset());

  const Tensor g = Tensor::randn(shape, data);
  y_cpu.backward(g);
  y_cuda.backward(g.to(kCUDA));
  require_identical(x_cuda.grad(), x_cpu.grad(), "gradient");
  // A second draw continues the stream on both devices alike.
  require_identical(op(x_cuda, p, true, gen_cuda), op(x_cpu, p, true, gen_cpu), "second draw");
}

}  // namespace

TEST_CASE("CUDA dropout masks are bit-identical to the CPU's", "[cuda][dropout]") {
  for (const Shape& shape : {Shape{1}, Shape{3}, Shape{4}, Shape{5}, Shape{37, 27}, Shape{2049}, Shape{3, 4099}}) {
    for (float p : {0.3f, 0.5f, 0.9f, 1.0f}) {
      DYNAMIC_SECTION("shape " << shape_str(shape) << " p " << p) { require_same_mask(ops::dropout, shape, p); }
    }
  }
}

TEST_CASE("CUDA dropout2d masks are bit-identical to the CPU's", "[cuda][dropout]") {
  // Units of 1 element, fewer elements than a Philox block, a tile's worth, and units longer than
  // a tile (they span tiles).
  for (const Shape& shape : {Shape{4, 7, 1, 1}, Shape{3, 5, 7, 9}, Shape{2, 3, 2049}, Shape{2, 3, 3001},
                             Shape{5, 13, 3, 3}}) {
    for (float p : {0.2f, 0.5f, 1.0f}) {
      DYNAMIC_SECTION("shape " << shape_str(shape) << " p " << p) { require_same_mask(ops::dropout2d, shape, p); }
    }
  }
}

TEST_CASE("CUDA dropout keeps about 1 - p of the values, scaled", "[cuda][dropout]") {
  Generator gen(37);
  const float p = 0.25f;
  const std::vector<float> y = ops::dropout(Tensor::ones({20000}, kCUDA), p, true, gen).to(kCPU).to_vector();
  int64_t kept = 0;
  for (float v : y) {
    REQUIRE((v == 0.0f || v == 1.0f / (1.0f - p)));
    kept += v != 0.0f;
  }
  CHECK(std::abs(static_cast<double>(kept) / 20000.0 - 0.75) < 0.02);
  // Evaluation and p = 0 are the identity and draw nothing.
  const uint64_t offset = gen.offset();
  const Tensor x = Tensor::ones({5}, kCUDA);
  CHECK(ops::dropout(x, p, false, gen).same(x));
  CHECK(ops::dropout2d(Tensor::ones({1, 2, 3}, kCUDA), 0.0f, true, gen).to_vector() == std::vector<float>(6, 1.0f));
  CHECK(gen.offset() == offset);
}

// ---- SGD ------------------------------------------------------------------------------------

namespace {

// The parameters of the SGD tests, on `device`, from fixed values: sizes of one element, odd
// sizes, one over a chunk, and 50 small ones (more than one launch takes).
std::vector<optim::ParamGroup> sgd_groups(Device device) {
  Generator gen(38);
  auto param = [&](int64_t n) { return Tensor::randn({n}, gen).to(device).requires_grad_(); };
  optim::ParamGroup decayed{{param(1), param(7), param(300), param(20011)}, {0.1f, 0.9f, 1e-2f, 0.1f, false}};
  optim::ParamGroup plain{{param(5000), param(33)}, {0.05f, 0.8f, 0.0f, 0.0f, true}};
  optim::ParamGroup many{{}, {0.02f, 0.0f, 1e-3f, 0.0f, false}};  // no momentum buffers
  for (int k = 0; k < 50; ++k) many.params.push_back(param(1 + k % 9));
  return {decayed, plain, many};
}

// Gives every parameter of the groups gradient number `step` (the same values on every device),
// except one parameter on odd steps (it is skipped).
void set_gradients(std::vector<optim::ParamGroup>& groups, int step) {
  Generator gen(100 + step);
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].params.size(); ++i) {
      Tensor& p = groups[g].params[i];
      const Tensor grad = Tensor::randn(p.shape(), gen).to(p.device());
      p.set_grad(g == 0 && i == 1 && step % 2 == 1 ? Tensor() : grad);
    }
}

}  // namespace

TEST_CASE("CUDA SGD steps over parameter groups match the CPU's", "[cuda][sgd]") {
  std::vector<optim::ParamGroup> groups_cpu = sgd_groups(kCPU), groups_cuda = sgd_groups(kCUDA);
  optim::SGD sgd_cpu(groups_cpu), sgd_cuda(groups_cuda);
  for (int step = 0; step < 5; ++step) {
    set_gradients(sgd_cpu.param_groups(), step);
    set_gradients(sgd_cuda.param_groups(), step);
    sgd_cpu.step();
    sgd_cuda.step();
  }
  size_t index = 0;
  for (size_t g = 0; g < groups_cpu.size(); ++g)
    for (size_t i = 0; i < groups_cpu[g].params.size(); ++i, ++index) {
      const std::string what = "group " + std::to_string(g) + " parameter " + std::to_string(i);
      const Tensor& p_cpu = sgd_cpu.param_groups()[g].params[i];
      const Tensor& p_cuda = sgd_cuda.param_groups()[g].params[i];
      REQUIRE(p_cuda.device().is_cuda());
      require_close(p_cuda, p_cpu, kSgd, what);
      const Tensor& buffer_cpu = sgd_cpu.momentum_buffers()[index];
      const Tensor& buffer_cuda = sgd_cuda.momentum_buffers()[index];
      REQUIRE(buffer_cpu.defined() == buffer_cuda.defined());
      REQUIRE(buffer_cpu.defined() == (g != 2));
      if (buffer_cpu.defined()) require_close(buffer_cuda, buffer_cpu, kSgd, what + " momentum");
    }
  // The update moved the parameters (a step that did nothing would pass the comparison too).
  const std::vector<optim::ParamGroup> start = sgd_groups(kCPU);
  for (size_t g = 0; g < start.size(); ++g)
    CHECK(start[g].params[0].to_vector() != sgd_cuda.param_groups()[g].params[0].to(kCPU).to_vector());
}

TEST_CASE("CUDA SGD rejects gradients and momentum buffers on another device", "[cuda][sgd]") {
  Tensor p = Tensor::zeros({3}, DType::Float32, kCUDA).requires_grad_();
  optim::SGD sgd({p}, {0.1f, 0.9f});
  p.set_grad(Tensor::ones({3}));
  CHECK_THROWS_WITH(sgd.step(), Catch::Contains("SGD") && Catch::Contains("cuda") && Catch::Contains("cpu"));
  p.set_grad(Tensor::ones({3}, kCUDA));
  sgd.momentum_buffers()[0] = Tensor::zeros({3});
  CHECK_THROWS_WITH(sgd.step(), Catch::Contains("momentum buffer") && Catch::Contains("cpu"));
  CHECK_THROWS_WITH(optim::SGD({p, p}, {0.1f}), Catch::Contains("more than once"));
}
