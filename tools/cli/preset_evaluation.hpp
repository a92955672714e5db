// The robustness half of a preset (tools/cli/presets.hpp): its optional "evaluation" key runs attack
// plans (tools/cli/attack_plan.hpp) against every trained network once training is done, and
// reports each variant's clean, per-attack and per-ε worst-case accuracy, mean ± SEM, as a table,
// JSON and an SVG chart (accuracy against ε where an attack sweeps ε, else bars per measure).
//
// The key's fields:
//   attacks     [plan, ...]: attack plans, their JSON keys (an object's "attack" and "eps" at least)
//   repeats     runs of every attack per network (new random starts and masks); default 1
//   seed        the attacks' random seed; default 0
//   per_class   attack this many test images per class (class-balanced, drawn by seed 0); 0: all
//   source      the variant whose seed-1 network crafts the transfer attacks (trained once, not
//               attacked); needed when a plan runs transfer
// "quick": {"evaluation": {...}} replaces these fields one by one.
//
// Statistics: each network's accuracy per attack is the mean over its repeats; a variant's is the
// mean over its networks (seeds) with the SEM over seeds, or, for a single network, the SEM over
// its repeats. Each network's attack report is kept beside it (<run>/NAME-attacks.json) and reused
// while the network (its options and weights file), the source, the test images and the settings
// are unchanged, so an interrupted evaluation continues where it stopped. A random-mask network
// draws its masks from a generator seeded by the evaluation's seed, so its report does not depend
// on what else ran.
#pragma once

#include "datasets/image_source.hpp"
#include "engine/device.hpp"
#include "tools/cli/attack_plan.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace flexnn::cli {

struct PresetEvaluation {
  std::vector<AttackPlan> plans;
  int repeats = 1;
  uint64_t seed = 0;
  int64_t per_class = 0;
  std::string source;  // a variant, or empty
};

// Reads the "evaluation" object (`where` names it in errors); unknown keys and wrong types throw.
PresetEvaluation evaluation_from_json(const nlohmann::json& json, const std::string& where);
nlohmann::json to_json(const PresetEvaluation& evaluation);

// One variant's trained networks, one run directory per seed (each holding model.safetensors and
// summary.json).
struct TrainedVariant {
  std::string variant, label;
  std::vector<std::filesystem::path> runs;
};

struct EvaluationContext {
  std::string name, title;          // the preset's, for file names and the chart
  std::string data;                 // the data set's name, for messages
  std::filesystem::path data_dir;   // where it is (part of what a reused report was made on)
  std::filesystem::path out;        // NAME-attacks.json and NAME-attacks.svg go here
  Device device = kCPU;
  int64_t batch_size = 100, workers = 4;
};

// Attacks every network of every target on `test` (the preset's test split, at the networks'
// input size), crafting transfer attacks on `source_run`'s network (empty: none). Prints the table,
// writes NAME-attacks.json and NAME-attacks.svg in context.out, and returns the JSON.
nlohmann::json run_evaluation(const PresetEvaluation& evaluation, const std::vector<TrainedVariant>& targets,
                              const std::filesystem::path& source_run, const datasets::ImageSource& test,
                              const EvaluationContext& context);

}  // namespace flexnn::cli
