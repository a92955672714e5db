// bench_vgg16_train: VGG16 training throughput on the CPU, the steps `flexnn train` takes (forward,
// cross-entropy, backward, SGD with the paper's two parameter groups) on synthetic CIFAR-10-sized
// batches, timed step by step after warm-up. benchmarks/run_vgg16.py runs it alternately with the
// same work in PyTorch (torch_vgg16.py) and sets the two side by side (docs/benchmarks.md).
// --profile adds the forward time of each block and the classifier, and the backward and optimiser
// times, summed over the timed steps. Prints one JSON object on stdout.
#include "engine/autograd/node.hpp"
#include "engine/generator.hpp"
#include "engine/ops.hpp"
#include "kernels/cpu/parallel.hpp"
#include "models/registry.hpp"
#include "models/vgg16.hpp"
#include "tools/cli/training.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

using namespace flexnn;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Options {
  std::string flex = "single", flex_mode = "standard";
  int64_t batch = 100, steps = 3, warmup = 1, image_size = 32;
  int threads = 0;
  uint64_t seed = 1;
  bool profile = false;
};

// The model's forward, one part at a time, adding each part's time to `times`.
Tensor profiled_forward(models::Vgg16& model, const Tensor& x, std::map<std::string, double>& times) {
  auto start = Clock::now();
  Tensor h = model.normalize->forward(x);
  for (size_t b = 0; b < model.blocks.size(); ++b) {
    h = model.blocks[b]->forward(h);
    times[fmt::format("forward block{}", b + 1)] += since(start);
    start = Clock::now();
  }
  h = model.feature_size() > 1 ? ops::mean(h, {2, 3}) : h.flatten(1);
  h = model.fc->forward(h);
  times["forward fc"] += since(start);
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"VGG16 training steps per second on the CPU (synthetic data)"};
  app.add_option("--flex", opt.flex, "vgg16 flex: none, single, all")->capture_default_str();
  app.add_option("--flex-mode", opt.flex_mode, "the flexible layers' gate")->capture_default_str();
  app.add_option("--batch", opt.batch, "images per step")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--steps", opt.steps, "timed steps")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", opt.warmup, "untimed steps first")->check(CLI::Range(0, 100000))->capture_default_str();
  app.add_option("--image-size", opt.image_size, "input side")->capture_default_str();
  app.add_option("--threads", opt.threads, "threads (default: FLEXNN_NUM_THREADS, else all hardware threads)");
  app.add_option("--seed", opt.seed, "seed of the weights and the data")->capture_default_str();
  app.add_flag("--profile", opt.profile, "time each block's forward, the backward and the optimiser");
  CLI11_PARSE(app, argc, argv);
  try {
    if (opt.threads > 0) cpu::set_num_threads(opt.threads);
    manual_seed(opt.seed);
    const models::Config config = models::complete_config(
        {{"model", "vgg16"}, {"flex", opt.flex}, {"flex_mode", opt.flex_mode}, {"image_size", opt.image_size}});
    const auto model = models::build_model(config, default_generator());
    auto& vgg = dynamic_cast<models::Vgg16&>(*model);
    cli::TrainingOptions training;  // the paper's SGD settings
    training.model = config;
    optim::SGD sgd(cli::parameter_groups(*model, training).groups);
    Generator data(opt.seed + 1);
    const Tensor images = Tensor::rand({opt.batch, 3, opt.image_size, opt.image_size}, data);
    std::vector<int64_t> labels(static_cast<size_t>(opt.batch));
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % models::Vgg16::kClasses);
    const Tensor targets = Tensor::from_indices(labels, {opt.batch});

    std::vector<double> step_s;
    std::vector<float> losses;
    std::map<std::string, double> parts;
    for (int64_t step = 0; step < opt.warmup + opt.steps; ++step) {
      const bool timed = step >= opt.warmup;
      std::map<std::string, double> times;
      const auto start = Clock::now();
      const Tensor logits = opt.profile ? profiled_forward(vgg, images, times) : vgg(images);
      const Tensor loss = ops::cross_entropy(logits, targets);
      sgd.zero_grad();
      auto part = Clock::now();
      loss.backward();
      times["backward"] += since(part);
      part = Clock::now();
      sgd.step();
      times["optimiser"] += since(part);
      losses.push_back(loss.item());
      if (!timed) continue;
      step_s.push_back(since(start));
      for (const auto& [name, s] : times) parts[name] += s;
    }
    double total = 0;
    for (const double s : step_s) total += s;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    nlohmann::json result = {{"framework", "flexnn"},
                             {"model", config},
                             {"threads", cpu::num_threads()},
                             {"batch", opt.batch},
                             {"step_s", step_s},
                             {"loss", losses},
                             {"images_per_s", static_cast<double>(opt.batch) * static_cast<double>(step_s.size()) / total},
                             {"peak_rss_mb", static_cast<double>(usage.ru_maxrss) / 1024.0}};
    if (opt.profile) result["parts_s"] = parts;
    fmt::print("{}\n", result.dump());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
