// The paper's training recipe for any registered model, with what a long run needs: a progress
// bar, a JSON-lines log per epoch, an atomic checkpoint every epoch, and --resume, which
// continues a killed run to the same final weights as an uninterrupted one (the data order of
// epoch e depends only on (seed, e), and the checkpoint holds the optimiser's momentum and the
// random generator's state beside the weights).
//
// Files in `out`: model.safetensors (weights + model config, what `flexnn eval` reads),
// train_state.safetensors (everything --resume needs), log.jsonl, summary.json.
#pragma once

#include "datasets/image_dataset.hpp"
#include "engine/nn/module.hpp"
#include "engine/optim/sgd.hpp"
#include "models/registry.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>

namespace flexnn::cli {

struct TrainingOptions {
  models::Config model = {{"model", "fmnist-small"}};
  int64_t epochs = 10;
  uint64_t seed = 1;
  int64_t batch_size = 100;
  float lr = 0.001f, momentum = 0.9f, weight_decay = 0.006f;  // thresholds: no weight decay
  int64_t lr_step = 20;
  float lr_gamma = 0.7f;
  int64_t per_class = 0;  // > 0: train on a class-balanced subset of this many images per class
  bool evaluate_each_epoch = true;  // test accuracy in every log line (else only at the end)
  Device device = kCPU;  // where the model trains (a run may resume on another device)
};
nlohmann::json to_json(const TrainingOptions& options);

// The paper's two SGD groups: every parameter but the thresholds (named "threshold" or
// "*.threshold"), with weight decay; then the thresholds, without. names lists the parameters in
// that order.
struct ParameterGroups {
  std::vector<optim::ParamGroup> groups;
  std::vector<std::string> names;
};
ParameterGroups parameter_groups(const nn::Module& model, const TrainingOptions& options);

enum class Output { progress_bar, lines, quiet };

struct TrainingRun {
  std::shared_ptr<nn::Module> model;
  models::Config config;    // complete
  nlohmann::json summary;   // also written to summary.json
};

// Trains in `out` (created if needed). Without `resume`, `out` must not hold a run already;
// with it, `out` must hold one made with the same options (epochs may grow).
TrainingRun train(const TrainingOptions& options, const datasets::ImageDataset& train_set,
                  const datasets::ImageDataset& test_set, const std::filesystem::path& out, bool resume,
                  Output output);

}  // namespace flexnn::cli
