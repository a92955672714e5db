// bench_cpu_ops: forward and forward+backward throughput (GFLOP/s) of ops::linear and ops::conv2d
// on the CPU at the shapes of the paper's networks (the small FMNIST network and VGG16 on CIFAR-10,
// batch 100). benchmarks/torch_cpu_ops.py runs the same cases in PyTorch with the same timing
// method and writes the same JSON schema, so benchmarks/run_cpu_ops.sh can set them side by side.
#include "benchmarks/timing.hpp"
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "kernels/cpu/parallel.hpp"

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
#include <iterator>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

using flexnn::Shape;
using flexnn::Tensor;
namespace ops = flexnn::ops;

// One benchmark case. A linear case is x [n, c_in] -> [n, c_out] (h = w = k = 1, pad = 0); a conv
// case is x [n, c_in, h, w] with a k x k kernel, stride 1 and `pad` zeros on each side.
// Keep this list, its names and its shape strings identical to CASES in torch_cpu_ops.py.
struct Case {
  std::string name;
  bool conv;
  int64_t n, c_in, h, w, c_out, k, pad;

  int64_t out_h() const { return h + 2 * pad - k + 1; }
  int64_t out_w() const { return w + 2 * pad - k + 1; }
  // Multiply-adds count two FLOPs; the bias is not counted.
  double forward_flops() const { return 2.0 * n * c_out * c_in * k * k * out_h() * out_w(); }
  std::string shape() const {
    if (!conv) return fmt::format("x[{},{}] w[{},{}]", n, c_in, c_out, c_in);
    return fmt::format("x[{},{},{},{}] w[{},{},{},{}] pad {}", n, c_in, h, w, c_out, c_in, k, k, pad);
  }
};

Case linear_case(std::string name, int64_t n, int64_t in, int64_t out) {
  return {std::move(name), false, n, in, 1, 1, out, 1, 0};
}
Case conv_case(std::string name, int64_t c_in, int64_t c_out, int64_t size, int64_t k, int64_t pad) {
  return {std::move(name), true, 100, c_in, size, size, c_out, k, pad};
}

// The small FMNIST network's fc1 and flexible-layer convolution, then every distinct convolution
// of the paper's VGG16 (Supporting Information) on 32x32 CIFAR-10 input. Block 1's flexible layer
// is unpadded (32 -> 30) and block 1 has no pooling, so block 2 runs at 30x30, then 15, 7 and 3.
const std::vector<Case> kCases = {
    linear_case("linear_fc1", 100, 6912, 120),
    {"conv_fmnist_1to12", true, 100, 1, 28, 28, 12, 5, 0},
    conv_case("conv_b1_3to64", 3, 64, 32, 3, 1),
    conv_case("conv_b1_64to64_flex", 64, 64, 32, 3, 0),
    conv_case("conv_b2_64to128", 64, 128, 30, 3, 1),
    conv_case("conv_b2_128", 128, 128, 30, 3, 1),
    conv_case("conv_b3_128to256", 128, 256, 15, 3, 1),
    conv_case("conv_b3_256", 256, 256, 15, 3, 1),
    conv_case("conv_b4_256to512", 256, 512, 7, 3, 1),
    conv_case("conv_b4_512", 512, 512, 7, 3, 1),
    conv_case("conv_b5_512", 512, 512, 3, 3, 1),
};

using flexnn::bench::time_median;
using flexnn::bench::Timing;

// The tensors of one case; which of x, weight and bias require grad is set per measurement.
struct Operands {
  Tensor x, weight, bias, grad_out;

  explicit Operands(const Case& c) {
    flexnn::Generator gen(42);
    const Shape x_shape = c.conv ? Shape{c.n, c.c_in, c.h, c.w} : Shape{c.n, c.c_in};
    const Shape w_shape = c.conv ? Shape{c.c_out, c.c_in, c.k, c.k} : Shape{c.c_out, c.c_in};
    const Shape y_shape = c.conv ? Shape{c.n, c.c_out, c.out_h(), c.out_w()} : Shape{c.n, c.c_out};
    const float bound = 1.0f / std::sqrt(static_cast<float>(c.c_in * c.k * c.k));  // torch's default init range
    x = Tensor::randn(x_shape, gen);
    weight = Tensor::rand(w_shape, gen, -bound, bound);
    bias = Tensor::rand({c.c_out}, gen, -bound, bound);
    grad_out = Tensor::randn(y_shape, gen);
  }

  Tensor forward(const Case& c) const {
    return c.conv ? ops::conv2d(x, weight, bias, 1, c.pad) : ops::linear(x, weight, bias);
  }
  void set_requires_grad(bool need_x, bool need_weight, bool need_bias) {
    x.requires_grad_(need_x);
    weight.requires_grad_(need_weight);
    bias.requires_grad_(need_bias);
  }
  // Forward, then backward from the fixed output gradient; the leaves' gradients are dropped so
  // that every repetition does the same work.
  void forward_backward(const Case& c) {
    forward(c).backward(grad_out);
    for (Tensor* t : {&x, &weight, &bias}) t->set_grad(Tensor());
  }
};

struct Options {
  int threads = 0;
  std::string json_path;
  std::string filter;
  bool quick = false;
  bool breakdown = false;
};

nlohmann::json run_case(const Case& c, const Options& opt) {
  const int min_reps = opt.quick ? 2 : 5;
  const double target_s = opt.quick ? 0.0 : 1.0;
  Operands operands(c);

  operands.set_requires_grad(false, false, false);
  const Timing fwd = time_median([&] { operands.forward(c); }, min_reps, target_s);
  operands.set_requires_grad(true, true, true);
  const Timing fwdbwd = time_median([&] { operands.forward_backward(c); }, min_reps, target_s);

  const double flops = c.forward_flops();
  nlohmann::json row = {{"case", c.name},
                        {"shape", c.shape()},
                        {"fwd_flop", flops},
                        {"fwd_ms", fwd.median_ms},
                        {"fwdbwd_ms", fwdbwd.median_ms},
                        {"fwd_gflops", flops / (fwd.median_ms * 1e6)},
                        {"fwdbwd_gflops", 3.0 * flops / (fwdbwd.median_ms * 1e6)},
                        {"fwd_reps", fwd.reps},
                        {"fwdbwd_reps", fwdbwd.reps}};
  if (opt.breakdown) {  // forward plus one gradient: the input's alone, then the weight's alone
    operands.set_requires_grad(true, false, false);
    row["fwd_dx_ms"] = time_median([&] { operands.forward_backward(c); }, min_reps, target_s).median_ms;
    operands.set_requires_grad(false, true, false);
    row["fwd_dw_ms"] = time_median([&] { operands.forward_backward(c); }, min_reps, target_s).median_ms;
  }
  return row;
}

// CPU time this process has used, all threads, user and system (run_cpu_ops.sh subtracts it from
// the machine's busy time to see how much other work competed with the benchmark).
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"bench_cpu_ops: linear and conv2d forward / forward+backward GFLOP/s on the CPU at the paper's shapes"};
  app.add_option("--threads", opt.threads, "threads (default: FLEXNN_NUM_THREADS, else all hardware threads)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--json", opt.json_path, "write the results to this JSON file");
  app.add_option("--filter", opt.filter, "run only the cases whose name contains this substring");
  app.add_flag("--quick", opt.quick, "2 repetitions per measurement (a smoke test, not a measurement)");
  app.add_flag("--breakdown", opt.breakdown, "also time forward + the input gradient, and forward + the weight gradient");
  CLI11_PARSE(app, argc, argv);

  std::vector<Case> cases;
  std::copy_if(kCases.begin(), kCases.end(), std::back_inserter(cases),
               [&](const Case& c) { return c.name.find(opt.filter) != std::string::npos; });
  if (cases.empty()) {
    std::string names;
    for (const Case& c : kCases) names += (names.empty() ? "" : ", ") + c.name;
    fmt::print(stderr, "error: no case matches --filter '{}' (cases: {})\n", opt.filter, names);
    return 2;
  }

  try {
    if (opt.threads > 0) flexnn::cpu::set_num_threads(opt.threads);
    nlohmann::json results = nlohmann::json::array();
    fmt::print("{:<22} {:>10} {:>10} {:>12} {:>12}\n", "case", "fwd ms", "fwd+bwd ms", "fwd GFLOP/s",
               "f+b GFLOP/s");
    for (const Case& c : cases) {
      nlohmann::json row = run_case(c, opt);
      fmt::print("{:<22} {:>10.3f} {:>10.3f} {:>12.1f} {:>12.1f}\n", c.name, row["fwd_ms"].get<double>(),
                 row["fwdbwd_ms"].get<double>(), row["fwd_gflops"].get<double>(),
                 row["fwdbwd_gflops"].get<double>());
      std::fflush(stdout);
      results.push_back(std::move(row));
    }
    if (!opt.json_path.empty()) {
      const nlohmann::json doc = {{"framework", "flexnn"},
                                  {"metadata",
                                   {{"version", FLEXNN_VERSION},
                                    {"compiler", __VERSION__},
                                    {"threads", flexnn::cpu::num_threads()},
                                    {"quick", opt.quick},
                                    {"cpu_seconds", cpu_seconds()}}},
                                  {"results", results}};
      flexnn::bench::write_json(opt.json_path, doc);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
