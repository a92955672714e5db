// Experiment presets: a JSON file under tools/presets (fig4a.json, ...) names the networks of one
// of the paper's figures (each a variant: a model config and training options), the data set,
// the seeds and epochs, and the figure; `flexnn reproduce NAME` trains every (variant, seed) run
// into <out>/<variant>/seed<k> (a finished run is reused, an interrupted one resumed), then
// writes <out>/NAME.json (test accuracy per epoch: each seed's, and the mean ± SEM over seeds
// per variant) and <out>/NAME.svg (accuracy against epoch, one line per variant, SEM error bars).
//
// The file's keys (docs/cli.md has an example):
//   title, description   strings; the figure's title and what the preset reproduces
//   data                 fmnist, cifar10, imagenette or folder
//   epochs, seeds        integers; the runs use seeds 1..seeds
//   training             training options shared by every run (tools/cli/training.hpp's to_json
//                        keys but model, data, epochs and seed); hflip defaults to the data set's
//   quick                {epochs, seeds, training, evaluation}: what --quick changes
//   runs                 [{variant, label, model, training}]: variant names the run directory,
//                        label the figure's legend, model the model config, training (optional)
//                        overrides the shared options for this variant
//   figure               {x_label, y_label} (optional)
//   evaluation           attacks run on every trained network (optional; tools/cli/preset_evaluation.hpp)
// Unknown keys are errors, so a misspelt option is not silently ignored.
#pragma once

#include "engine/device.hpp"
#include "models/registry.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace flexnn::cli {

struct PresetRun {
  std::string variant, label;
  models::Config model;      // as the file gives it
  nlohmann::json training;   // overrides for this variant (an object, maybe empty)
};

struct Preset {
  std::string name;  // the file's stem
  std::string title, description, data;
  int64_t epochs = 0, seeds = 0;
  nlohmann::json training, quick;
  nlohmann::json evaluation;  // null: none
  std::vector<PresetRun> runs;
  std::string x_label = "epoch", y_label = "test accuracy (%)";
};

// Reads and checks a preset file (structure and types; models are checked when it runs). Throws
// flexnn::Error naming the file and the key.
Preset load_preset(const std::filesystem::path& file);

// Where the presets are: $FLEXNN_PRESETS_DIR when set, else tools/presets of the source tree
// flexnn was built from.
std::filesystem::path presets_dir();
// The presets in presets_dir() (the stems of its *.json files), sorted; none when it is missing.
std::vector<std::string> preset_names();

// What the command line may change.
struct PresetOptions {
  bool quick = false;
  std::optional<int64_t> epochs, seeds, per_class, test_per_class, batch_size;  // override the preset
  std::optional<int> repeats;                 // override the evaluation's
  std::optional<int64_t> attack_per_class;
  std::vector<std::string> variants;  // the variants to run (empty: all; the evaluation's source is always trained)
  std::filesystem::path out;          // empty: runs/NAME, or runs/NAME-quick
  std::filesystem::path data_dir;     // empty: the data set's default
  Device device = kCPU;
  int64_t workers = 4;
  bool skip_bad = false;
};

// Runs the preset: every model is checked first (one the registry lacks is an error naming it
// and the run, before anything trains), then each run is trained or reused in turn (the
// evaluation's source variant with seed 1 only), then the evaluation, if any, attacks every other
// network. Prints a line per run and a summary table; writes and returns the results JSON.
nlohmann::json run_preset(const Preset& preset, const PresetOptions& options);

}  // namespace flexnn::cli
