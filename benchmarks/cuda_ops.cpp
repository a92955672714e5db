// bench_cuda_ops: the CUDA backend's microbenchmarks (issue 4, "GPU check"): the fused flexible layer
// against its unfused composition at the VGG16 block-1 shape, conv2d at the paper's shapes, GEMM
// (fp32 and TF32), memory-bound kernels against the device's copy bandwidth, and an fmnist-small
// training epoch. Every time is the median wall time of repetitions that each end with
// cuda::synchronize(), after a warm-up. benchmarks/torch_cuda_ops.py runs the same cases in PyTorch
// with the same method and JSON schema; benchmarks/compare_cuda.py joins the two by case.
// --smoke runs every case at tiny sizes, so the program also runs (as a CTest test) on the CPU
// emulation of CUDA; its numbers then say nothing about speed.
#include "benchmarks/timing.hpp"
#include "engine/allocator.hpp"
#include "engine/flexnn.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/memory.hpp"
#include "models/registry.hpp"
#include "tools/cli/training.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using flexnn::kCUDA;
using flexnn::Shape;
using flexnn::Tensor;
using Json = nlohmann::json;
namespace cuda = flexnn::cuda;
namespace ops = flexnn::ops;

// What a case measures. Keep the names, kinds and shape strings identical to torch_cuda_ops.py.
enum class Kind {
  flexible_fused,    // ops::flexible_conv2d: conv, max-pool, threshold gate and blend, one kernel each way
  flexible_unfused,  // the same maths from separate ops, as PyTorch composes it
  conv,              // ops::conv2d
  linear,            // ops::linear
  matmul,            // ops::matmul, square
  copy,              // Tensor::clone (device to device)
  relu,              // ops::relu forward
  add,               // ops::add of two tensors of the same shape
  sgd,               // optim::SGD::step over one large parameter (momentum, weight decay)
  epoch,             // fmnist-small: one training epoch
};

// Sizes: a convolution x [n, c_in, size, size] * w [c_out, c_in, k, k], stride 1, `pad` zeros per
// side (the flexible cases: c_out = c_in, the pool has the kernel's size, stride 1, no padding); a
// linear x [n, c_in] * w [c_out, c_in]; a matmul [n, n] x [n, n]; a memory-bound case over n
// floats; an epoch of n steps of batch c_in.
struct Case {
  std::string name;
  Kind kind;
  bool tf32 = false;
  int64_t n = 0, c_in = 0, size = 0, c_out = 0, k = 0, pad = 0;
  int64_t out() const { return size + 2 * pad - k + 1; }
};

Case conv_case(std::string name, int64_t c_in, int64_t c_out, int64_t size, int64_t k = 3, int64_t pad = 1) {
  return {std::move(name), Kind::conv, false, 100, c_in, size, c_out, k, pad};
}
Case flexible_case(std::string name, Kind kind, bool tf32) {
  return {std::move(name), kind, tf32, 100, 64, 32, 64, 3, 0};
}
Case simple_case(std::string name, Kind kind, int64_t n, bool tf32 = false) { return {std::move(name), kind, tf32, n}; }

// The VGG16 block-1 flexible layer (x [100, 64, 32, 32] -> 30x30) fused and unfused; every distinct
// convolution of the paper's networks (as in bench_cpu_ops); the FMNIST net's fc1 and a 4096^3
// matmul; memory-bound kernels over 256 MiB; an fmnist-small epoch (600 steps of batch 100).
std::vector<Case> full_cases() {
  constexpr int64_t k256MiB = 256LL << 20 >> 2;  // floats
  return {
      flexible_case("flexible_fused_b1", Kind::flexible_fused, false),
      flexible_case("flexible_unfused_b1", Kind::flexible_unfused, false),
      flexible_case("flexible_fused_b1_tf32", Kind::flexible_fused, true),
      flexible_case("flexible_unfused_b1_tf32", Kind::flexible_unfused, true),
      {"conv_fmnist_1to12", Kind::conv, false, 100, 1, 28, 12, 5, 0},
      conv_case("conv_b1_3to64", 3, 64, 32),
      conv_case("conv_b1_64to64_flex", 64, 64, 32, 3, 0),
      conv_case("conv_b2_64to128", 64, 128, 30),
      conv_case("conv_b2_128", 128, 128, 30),
      conv_case("conv_b3_128to256", 128, 256, 15),
      conv_case("conv_b3_256", 256, 256, 15),
      conv_case("conv_b4_256to512", 256, 512, 7),
      conv_case("conv_b4_512", 512, 512, 7),
      conv_case("conv_b5_512", 512, 512, 3),
      {"linear_fc1", Kind::linear, false, 100, 6912, 1, 120},
      {"linear_fc1_tf32", Kind::linear, true, 100, 6912, 1, 120},
      simple_case("matmul_4096", Kind::matmul, 4096),
      simple_case("matmul_4096_tf32", Kind::matmul, 4096, true),
      simple_case("copy", Kind::copy, k256MiB),
      simple_case("relu", Kind::relu, k256MiB),
      simple_case("add", Kind::add, k256MiB),
      simple_case("sgd_step", Kind::sgd, k256MiB),
      {"fmnist_small_epoch", Kind::epoch, false, 600, 100},
  };
}

// The same cases at sizes the emulator runs in seconds: batch 2, at most 4 channels and 8x8 images,
// 64 KiB memory-bound tensors, 4 training steps of batch 2.
Case smoke_size(Case c) {
  switch (c.kind) {
    case Kind::flexible_fused:
    case Kind::flexible_unfused:
    case Kind::conv:
      c.n = 2;
      c.c_in = std::min<int64_t>(c.c_in, 3);
      c.c_out = c.kind == Kind::conv ? std::min<int64_t>(c.c_out, 4) : c.c_in;
      c.size = std::min<int64_t>(c.size, 8);
      break;
    case Kind::linear:
      c.n = 2, c.c_in = 64, c.c_out = 8;
      break;
    case Kind::matmul:
      c.n = 32;
      break;
    case Kind::copy:
    case Kind::relu:
    case Kind::add:
    case Kind::sgd:
      c.n = 16384;
      break;
    case Kind::epoch:
      c.n = 4, c.c_in = 2;
      break;
  }
  return c;
}

std::string shape_of(const Case& c) {
  switch (c.kind) {
    case Kind::flexible_fused:
    case Kind::flexible_unfused:
    case Kind::conv:
      return fmt::format("x[{},{},{},{}] w[{},{},{},{}] pad {}", c.n, c.c_in, c.size, c.size, c.c_out, c.c_in, c.k,
                         c.k, c.pad);
    case Kind::linear:
      return fmt::format("x[{},{}] w[{},{}]", c.n, c.c_in, c.c_out, c.c_in);
    case Kind::matmul:
      return fmt::format("[{0},{0}] x [{0},{0}]", c.n);
    case Kind::copy:
    case Kind::relu:
    case Kind::add:
    case Kind::sgd:
      return fmt::format("[{}] float32", c.n);
    case Kind::epoch:
      return fmt::format("{} steps of batch {}", c.n, c.c_in);
  }
  return {};
}

struct Options {
  std::string json_path, filter;
  bool smoke = false;
  int reps = 0;  // 0: the default (10, or 1 with --smoke)
};

using flexnn::bench::time_median;
using flexnn::bench::Timing;

struct Budget {
  int min_reps;
  double target_s;
};

// Forward (no graph recorded) and forward + backward from a fixed output gradient; the leaves'
// gradients are dropped after each backward, so every repetition does the same work.
Json time_forward_backward(const std::function<Tensor()>& forward, std::vector<Tensor*> leaves,
                           const Tensor& grad_out, double forward_flops, const Budget& budget) {
  Timing fwd{};
  {
    flexnn::NoGradGuard no_grad;
    fwd = time_median([&] { forward(); }, budget.min_reps, budget.target_s, cuda::synchronize);
  }
  const Timing fwdbwd = time_median(
      [&] {
        forward().backward(grad_out);
        for (Tensor* t : leaves) t->set_grad(Tensor());
      },
      budget.min_reps, budget.target_s, cuda::synchronize);
  return {{"kind", "op"},
          {"fwd_flop", forward_flops},
          {"fwd_ms", fwd.median_ms},
          {"fwdbwd_ms", fwdbwd.median_ms},
          {"fwd_gflops", forward_flops / (fwd.median_ms * 1e6)},
          {"fwdbwd_gflops", 3.0 * forward_flops / (fwdbwd.median_ms * 1e6)},
          {"fwd_reps", fwd.reps},
          {"fwdbwd_reps", fwdbwd.reps}};
}

// x, weight, bias as torch initialises a convolution or linear layer (uniform in +-1/sqrt(fan_in)).
struct Layer {
  Tensor x, weight, bias;
  Layer(const Shape& x_shape, const Shape& w_shape, int64_t fan_in, flexnn::Generator& gen) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
    x = Tensor::randn(x_shape, gen, 0.0f, 1.0f, kCUDA).requires_grad_();
    weight = Tensor::rand(w_shape, gen, -bound, bound, kCUDA).requires_grad_();
    bias = Tensor::rand({w_shape[0]}, gen, -bound, bound, kCUDA).requires_grad_();
  }
};

constexpr float kSharpness = 50.0f;

Json run_op(const Case& c, const Budget& budget) {
  flexnn::Generator gen(42);
  if (c.kind == Kind::matmul) {
    Tensor a = Tensor::randn({c.n, c.n}, gen, 0.0f, 1.0f, kCUDA).requires_grad_();
    Tensor b = Tensor::randn({c.n, c.n}, gen, 0.0f, 1.0f, kCUDA).requires_grad_();
    const Tensor grad_out = Tensor::randn({c.n, c.n}, gen, 0.0f, 1.0f, kCUDA);
    return time_forward_backward([&] { return ops::matmul(a, b); }, {&a, &b}, grad_out,
                                 2.0 * c.n * c.n * c.n, budget);
  }
  if (c.kind == Kind::linear) {
    Layer l({c.n, c.c_in}, {c.c_out, c.c_in}, c.c_in, gen);
    const Tensor grad_out = Tensor::randn({c.n, c.c_out}, gen, 0.0f, 1.0f, kCUDA);
    return time_forward_backward([&] { return ops::linear(l.x, l.weight, l.bias); }, {&l.x, &l.weight, &l.bias},
                                 grad_out, 2.0 * c.n * c.c_in * c.c_out, budget);
  }
  Layer l({c.n, c.c_in, c.size, c.size}, {c.c_out, c.c_in, c.k, c.k}, c.c_in * c.k * c.k, gen);
  const Tensor grad_out = Tensor::randn({c.n, c.c_out, c.out(), c.out()}, gen, 0.0f, 1.0f, kCUDA);
  const double flops = 2.0 * c.n * c.c_out * c.c_in * c.k * c.k * c.out() * c.out();
  if (c.kind == Kind::conv) {
    return time_forward_backward([&] { return ops::conv2d(l.x, l.weight, l.bias, 1, c.pad); },
                                 {&l.x, &l.weight, &l.bias}, grad_out, flops, budget);
  }
  // The flexible layer: thresholds T [C, H_out, W_out] ~ N(0.5, 0.1) as the model initialises them.
  Tensor threshold = Tensor::randn({c.c_out, c.out(), c.out()}, gen, 0.5f, 0.1f, kCUDA).requires_grad_();
  const std::vector<Tensor*> leaves = {&l.x, &l.weight, &l.bias, &threshold};
  if (c.kind == Kind::flexible_unfused) {
    return time_forward_backward(
        [&] {
          const Tensor conv = ops::conv2d(l.x, l.weight, l.bias);
          const Tensor pooled = ops::max_pool2d(l.x, c.k, 1);
          const Tensor gate = ops::sigmoid((threshold - pooled) * kSharpness);
          return gate * pooled + (1.0f - gate) * conv;
        },
        leaves, grad_out, flops, budget);
  }
  return time_forward_backward(
      [&] {
        return ops::flexible_conv2d(l.x, l.weight, l.bias, /*stride=*/1, /*padding=*/0, threshold,
                                    flexnn::FlexGate::threshold, kSharpness, ops::FlexiblePool{c.k});
      },
      leaves, grad_out, flops, budget);
}

// Bytes read plus bytes written per call, over the case's n floats.
Json run_bandwidth(const Case& c, const Budget& budget) {
  const Tensor a = Tensor::full({c.n}, 1.5f, kCUDA), b = Tensor::full({c.n}, -0.5f, kCUDA);
  const double bytes = 4.0 * static_cast<double>(c.n);
  double moved = 0;
  Timing t{};
  switch (c.kind) {
    case Kind::copy:
      moved = 2 * bytes;
      t = time_median([&] { a.clone(); }, budget.min_reps, budget.target_s, cuda::synchronize);
      break;
    case Kind::relu:
      moved = 2 * bytes;
      t = time_median([&] { ops::relu(b); }, budget.min_reps, budget.target_s, cuda::synchronize);
      break;
    case Kind::add:
      moved = 3 * bytes;
      t = time_median([&] { ops::add(a, b); }, budget.min_reps, budget.target_s, cuda::synchronize);
      break;
    default: {  // sgd: reads the parameter, its gradient and the momentum buffer, writes two of them
      Tensor param = a.clone().requires_grad_();
      param.set_grad(b);
      flexnn::optim::SGD sgd({param}, {0.001f, 0.9f, 0.006f});
      sgd.step();  // creates the momentum buffer: every timed step is a steady-state one
      moved = 5 * bytes;
      t = time_median([&] { sgd.step(); }, budget.min_reps, budget.target_s, cuda::synchronize);
    }
  }
  return {{"kind", "bandwidth"}, {"bytes", moved}, {"ms", t.median_ms},
          {"gbps", moved / (t.median_ms * 1e6)}, {"reps", t.reps}};
}

// fmnist-small (standard flexible mode) trained for c.n steps of batch c.c_in on device-resident
// random images and labels, with the paper's SGD (two groups: no weight decay on thresholds).
Json run_epoch(const Case& c, bool smoke) {
  flexnn::Generator gen(7);
  const auto model = flexnn::models::build_model({{"model", "fmnist-small"}, {"flex", "standard"}}, gen);
  model->to(kCUDA);
  model->train();
  flexnn::optim::SGD sgd(flexnn::cli::parameter_groups(*model, flexnn::cli::TrainingOptions{}).groups);
  std::vector<Tensor> images, labels;
  for (int64_t step = 0; step < c.n; ++step) {
    images.push_back(Tensor::rand({c.c_in, 1, 28, 28}, gen, 0.0f, 1.0f, kCUDA));
    std::vector<int64_t> y(static_cast<std::size_t>(c.c_in));
    for (int64_t i = 0; i < c.c_in; ++i) y[static_cast<std::size_t>(i)] = (step * 7 + i * 3) % 10;
    labels.push_back(Tensor::from_indices(y, {c.c_in}, kCUDA));
  }
  Tensor loss;
  auto train_step = [&](int64_t step) {
    sgd.zero_grad();
    loss = ops::cross_entropy((*model)(images[static_cast<std::size_t>(step)]), labels[static_cast<std::size_t>(step)]);
    loss.backward();
    sgd.step();
  };
  const int64_t warm_up = smoke ? 1 : 5;
  for (int64_t step = 0; step < warm_up; ++step) train_step(step);
  cuda::synchronize();
  std::size_t data_bytes = 0;
  for (std::size_t i = 0; i < images.size(); ++i) data_bytes += images[i].nbytes() + labels[i].nbytes();
  flexnn::reset_peak_allocated_bytes(flexnn::DeviceType::CUDA);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < c.n; ++step) train_step(step);
  const float final_loss = loss.item();  // waits for the last step
  const std::size_t peak = flexnn::peak_allocated_bytes(flexnn::DeviceType::CUDA);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!std::isfinite(final_loss))
    throw std::runtime_error(fmt::format("{}: the loss diverged to {}", c.name, final_loss));
  loss = Tensor();

  // Peak device memory of the measured steps, as torch.cuda.max_memory_allocated counts it for the
  // same steps (torch_cuda_ops.py subtracts the data set on its side; here the data set is
  // allocated before the reset and stays in use, so it is subtracted too).
  return {{"kind", "epoch"},
          {"steps", c.n},
          {"batch", c.c_in},
          {"epoch_s", seconds},
          {"step_ms", 1e3 * seconds / static_cast<double>(c.n)},
          {"images_per_s", static_cast<double>(c.n * c.c_in) / seconds},
          {"final_loss", final_loss},
          {"peak_bytes", peak - data_bytes}};
}

Json run_case(const Case& c, const Options& opt) {
  const Budget budget{opt.reps > 0 ? opt.reps : (opt.smoke ? 1 : 10), opt.smoke ? 0.0 : 0.3};
  cuda::set_allow_tf32(c.tf32);
  Json row;
  switch (c.kind) {
    case Kind::flexible_fused:
    case Kind::flexible_unfused:
    case Kind::conv:
    case Kind::linear:
    case Kind::matmul:
      row = run_op(c, budget);
      break;
    case Kind::copy:
    case Kind::relu:
    case Kind::add:
    case Kind::sgd:
      row = run_bandwidth(c, budget);
      break;
    case Kind::epoch:
      row = run_epoch(c, opt.smoke);
      break;
  }
  cuda::set_allow_tf32(false);
  row["case"] = c.name;
  row["shape"] = shape_of(c);
  row["precision"] = c.tf32 ? "tf32" : "fp32";
  return row;
}

// One line per case; memory-bound cases also as a percentage of the copy bandwidth measured first.
void print_row(const Json& row, double copy_gbps) {
  const std::string name = row["case"], kind = row["kind"];
  if (kind == "op") {
    fmt::print("{:<26} {:>10.3f} {:>10.3f} {:>10.1f} {:>10.1f}   {}\n", name, row["fwd_ms"].get<double>(),
               row["fwdbwd_ms"].get<double>(), row["fwd_gflops"].get<double>(), row["fwdbwd_gflops"].get<double>(),
               row["shape"].get<std::string>());
  } else if (kind == "bandwidth") {
    const double gbps = row["gbps"];
    fmt::print("{:<26} {:>10.3f} ms {:>9.1f} GB/s{}\n", name, row["ms"].get<double>(), gbps,
               copy_gbps > 0 ? fmt::format(" {:>6.1f} % of copy", 100.0 * gbps / copy_gbps) : "");
  } else {
    fmt::print("{:<26} {:>10.3f} s/epoch ({:.3f} ms/step), final loss {:.4f}, peak {:.1f} MiB\n", name,
               row["epoch_s"].get<double>(), row["step_ms"].get<double>(), row["final_loss"].get<double>(),
               row["peak_bytes"].get<double>() / (1 << 20));
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"bench_cuda_ops: the CUDA backend's microbenchmarks (flexible layer, conv2d, GEMM, memory-bound "
               "kernels, an fmnist-small epoch)"};
  app.add_option("--json", opt.json_path, "write the results to this JSON file");
  app.add_option("--filter", opt.filter, "run only the cases whose name contains this substring");
  app.add_option("--reps", opt.reps, "at least this many timed repetitions per measurement (default 10)")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--smoke", opt.smoke, "every case at tiny sizes, one repetition (a test, not a measurement)");
  CLI11_PARSE(app, argc, argv);

  std::vector<Case> cases;
  for (const Case& c : full_cases())
    if (c.name.find(opt.filter) != std::string::npos) cases.push_back(opt.smoke ? smoke_size(c) : c);
  if (cases.empty()) {
    std::string names;
    for (const Case& c : full_cases()) names += (names.empty() ? "" : ", ") + c.name;
    fmt::print(stderr, "error: no case matches --filter '{}' (cases: {})\n", opt.filter, names);
    return 2;
  }

  try {
    if (flexnn::cuda::device_count() == 0) {
      fmt::print(stderr, "error: no CUDA device (neither a GPU nor the emulator)\n");
      return 2;
    }
    const std::string device = cuda::device_name(0);
    fmt::print("{} ({}){}\n", device, cuda::is_emulated() ? "CPU emulation of CUDA" : "GPU",
               opt.smoke ? ", smoke sizes" : "");
    fmt::print("{:<26} {:>10} {:>10} {:>10} {:>10}\n", "case", "fwd ms", "f+b ms", "fwd GF/s", "f+b GF/s");
    Json results = Json::array();
    double copy_gbps = 0;
    for (const Case& c : cases) {
      Json row = run_case(c, opt);
      if (c.kind == Kind::copy) copy_gbps = row["gbps"];
      print_row(row, copy_gbps);
      results.push_back(std::move(row));
    }
    if (!opt.json_path.empty()) {
      const Json doc = {{"framework", "flexnn"},
                        {"metadata",
                         {{"version", FLEXNN_VERSION},
                          {"compiler", __VERSION__},
                          {"device", device},
                          {"emulated", cuda::is_emulated()},
                          {"smoke", opt.smoke}}},
                        {"results", results}};
      flexnn::bench::write_json(opt.json_path, doc);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
