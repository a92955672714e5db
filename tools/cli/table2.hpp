// The paper's Table 2 experiment: fmnist-small trained as the baseline and in each flexible mode
// for several seeds, then clean and FGSM accuracy on the test set, mean ± SEM over seeds, printed
// beside the paper's numbers and written as JSON and an SVG chart. Each (variant, seed) run lives
// in its own directory: a finished one is reused and an interrupted one resumed, so a long
// reproduction survives being killed.
#pragma once

#include "datasets/image_dataset.hpp"
#include "engine/device.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace flexnn::cli {

struct Table2Options {
  int64_t epochs = 150;
  int64_t seeds = 10;
  int64_t per_class = 0;  // > 0: train on a balanced subset
  float eps = 0.1f;
  std::string eps_space = "pixel";
  std::vector<std::string> variants = {"none", "uniform", "standard", "reverse", "random"};
  std::filesystem::path out = "runs/table2";
  std::string label;  // e.g. "quick", shown in the report
  Device device = kCPU;  // where the networks train and are evaluated
};

// Runs (or reuses) every training run, prints the table, writes table2.json and table2.svg in
// `out`, and returns the JSON.
nlohmann::json run_table2(const Table2Options& options, const datasets::ImageDataset& train_set,
                          const datasets::ImageDataset& test_set);

}  // namespace flexnn::cli
