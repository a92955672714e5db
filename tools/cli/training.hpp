// The paper's training recipe for any registered model, with what a long run needs: a progress
// bar, a JSON-lines log per epoch, an atomic checkpoint every epoch, and --resume, which
// continues a killed run to the same final weights as an uninterrupted one (the data order of
// epoch e depends only on (seed, e), and the checkpoint holds the optimiser's momentum and the
// random generator's state beside the weights).
//
// Files in `out`: model.safetensors (weights + model config, what `flexnn eval` reads),
// train_state.safetensors (everything --resume needs), log.jsonl, summary.json.
//
// The data is any ImageSource: an in-memory ImageDataset (through ImageDatasetSource) or image
// files decoded on the fly (Imagenette, folders).
#pragma once

#include "datasets/image_dataset.hpp"
#include "datasets/image_source.hpp"
#include "engine/nn/module.hpp"
#include "engine/optim/sgd.hpp"
#include "models/registry.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>

namespace flexnn::cli {

struct TrainingOptions {
  models::Config model = {{"model", "fmnist-small"}};
  std::string data;  // the data set's name, for the run's record and messages ("": the model's own)
  int64_t epochs = 10;
  uint64_t seed = 1;
  int64_t batch_size = 100;
  float lr = 0.001f, momentum = 0.9f, weight_decay = 0.006f;  // thresholds: no weight decay
  int64_t lr_step = 20;
  float lr_gamma = 0.7f;
  int64_t per_class = 0;  // > 0: train on a class-balanced subset of this many images per class
  // > 0: test on a class-balanced subset of this many test images per class (drawn by seed 0, so
  // every run of an experiment sees the same), to keep short runs short.
  int64_t test_per_class = 0;
  float hflip = 0;  // probability of flipping each training image horizontally (the paper: 0.5 on RGB data)
  int64_t workers = 1;  // threads that load (decode, augment) each batch; results do not depend on it
  bool evaluate_each_epoch = true;  // test accuracy in every log line (else only at the end)
  Device device = kCPU;  // where the model trains (a run may resume on another device)
};
// The options that make a run what it is (not workers, evaluate_each_epoch or device). "data" is
// left out when it is the model's own data set, and "hflip" and "test_per_class" when 0, so that
// runs made before these options existed keep their record.
nlohmann::json to_json(const TrainingOptions& options);
// Sets the options that `json` names (the keys of to_json but "model" and "data"); an unknown key
// or a value of the wrong type is an error naming it and `where`.
void update_from_json(TrainingOptions& options, const nlohmann::json& json, const std::string& where);

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
  nlohmann::json log;       // the records of log.jsonl, one per epoch
};

// Trains in `out` (created if needed). Without `resume`, `out` must not hold a run already;
// with it, `out` must hold one made with the same options (epochs may grow). The training
// examples must have the model's input shape (an error names both). per_class and test_per_class
// need data held in memory (ImageDatasetSource).
TrainingRun train(const TrainingOptions& options, const datasets::ImageSource& train_set,
                  const datasets::ImageSource& test_set, const std::filesystem::path& out, bool resume,
                  Output output);
TrainingRun train(const TrainingOptions& options, const datasets::ImageDataset& train_set,
                  const datasets::ImageDataset& test_set, const std::filesystem::path& out, bool resume,
                  Output output);

// The run in `out` made with `options`: reused as it is when it finished (its summary.json
// records these options), else resumed (its training state exists) or trained from the start.
// An experiment of many runs therefore continues where it was killed.
TrainingRun train_or_reuse(const TrainingOptions& options, const datasets::ImageSource& train_set,
                           const datasets::ImageSource& test_set, const std::filesystem::path& out, Output output);

}  // namespace flexnn::cli
