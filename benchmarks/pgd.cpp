// bench_pgd: PGD-20 under the TRADES protocol (ε = 0.031, step 0.003, random start; L∞, pixel
// space) over the Fashion-MNIST test set for fmnist-small, timed. benchmarks/torch_pgd.py runs
// the same attack in PyTorch on the same weights (--save-weights writes them as safetensors), and
// benchmarks/run_pgd.py sets the two side by side (docs/benchmarks_pgd.md).
//
//   bench_pgd [--checkpoint M | --seed S [--flex standard]] [--data-dir DIR] [--batch 100]
//             [--limit N] [--threads 2] [--save-weights PATH] [--json PATH]
//             [--attack pgd | NAME | suite] [--square-queries 5000]
//
// Prints one JSON object: the PGD time (the attack plus the verdict forward, the clean
// classification excluded, as on the PyTorch side), clean and PGD accuracy, images per second.
// --attack times another named attack (attacks/suite.hpp) or the whole adaptive suite instead,
// with each attack's time and accuracy and the worst case.
#include "attacks/worst_case.hpp"
#include "datasets/catalog.hpp"
#include "engine/io/atomic_file.hpp"
#include "kernels/cpu/parallel.hpp"
#include "models/registry.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <numeric>

int main(int argc, char** argv) {
  using namespace flexnn;
  CLI::App app{"PGD-20 (TRADES) over the Fashion-MNIST test set for fmnist-small, timed"};
  std::string checkpoint, data_dir = datasets::default_data_dir("fmnist").string(), save_weights, json_path;
  std::string flex = "standard";
  uint64_t seed = 0;
  int64_t batch = 100, limit = 0;
  std::string attack = "pgd";
  int threads = 2, square_queries = 5000;
  app.add_option("--checkpoint", checkpoint, "an fmnist-small checkpoint (default: a fresh model from --seed)");
  app.add_option("--seed", seed, "initialisation seed of the fresh model, and the attack's");
  app.add_option("--flex", flex, "flexible mode of the fresh model");
  app.add_option("--data-dir", data_dir, "the Fashion-MNIST folder");
  app.add_option("--batch", batch, "batch size");
  app.add_option("--limit", limit, "attack only the first N test images (0: all)");
  app.add_option("--threads", threads, "CPU threads");
  app.add_option("--save-weights", save_weights, "write the model's weights here (safetensors) for torch_pgd.py");
  app.add_option("--json", json_path, "also write the result here");
  app.add_option("--attack", attack, "the attack to time: pgd, another named attack, or suite");
  app.add_option("--square-queries", square_queries, "the Square attack's queries");
  CLI11_PARSE(app, argc, argv);
  try {
    cpu::set_num_threads(threads);
    Generator gen(seed);
    models::LoadedModel loaded;
    if (checkpoint.empty()) {
      loaded.config = models::complete_config({{"model", "fmnist-small"}, {"flex", flex}});
      loaded.model = models::build_model(loaded.config, gen);
    } else {
      loaded = models::load_model(checkpoint, gen);
    }
    if (!save_weights.empty()) models::save_model(save_weights, *loaded.model, loaded.config);
    datasets::ImageDataset test = datasets::load_dataset("fmnist", data_dir, "test");
    if (limit > 0 && limit < test.size()) {
      std::vector<int64_t> first(static_cast<size_t>(limit));
      std::iota(first.begin(), first.end(), 0);
      test = datasets::subset(test, first);
    }
    const attacks::ThreatModel threat;  // L∞, ε = 0.031 in pixel units
    attacks::NamedAttackOptions named;
    named.square.queries = square_queries;
    const std::vector<attacks::AttackSpec> specs = attack == "suite"
                                                       ? attacks::adaptive_suite(*loaded.model, threat, named)
                                                       : std::vector{attacks::named_attack(attack, threat, named)};
    attacks::RunOptions options;
    options.batch_size = batch, options.seed = seed;
    const attacks::AttackReport report = attacks::run_attacks(*loaded.model, test, specs, options);
    const attacks::AttackRun& first = report.runs.at(0);
    nlohmann::json result{{"framework", "flexnn"},
                          {"threads", threads},
                          {"images", report.n},
                          {"batch", batch},
                          {"pgd_s", first.seconds},
                          {"total_s", report.seconds},
                          {"images_per_s", static_cast<double>(report.n) / first.seconds},
                          {"clean_accuracy", report.clean.accuracy},
                          {"pgd_accuracy", first.accuracy}};
    if (attack != "pgd") {
      result = attacks::report_json(report);
      result["framework"] = "flexnn", result["threads"] = threads, result["batch"] = batch;
    }
    std::printf("%s\n", result.dump().c_str());
    if (!json_path.empty()) write_text_atomically(json_path, result.dump(2) + "\n", "benchmark result");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
