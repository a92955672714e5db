// The model registry: every network is built by name from a JSON config, and a checkpoint holds
// that config (complete, defaults filled in) in its metadata under "flexnn.config", so that a
// model is rebuilt from its checkpoint alone.
#pragma once

#include "engine/generator.hpp"
#include "engine/io/checkpoint.hpp"
#include "engine/nn/flexible.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace flexnn::models {

using Config = nlohmann::json;
inline constexpr const char* kConfigKey = "flexnn.config";

// What a model expects and produces.
struct ModelSpec {
  std::string dataset;  // the data set it is built for, e.g. "fmnist"
  int64_t channels, height, width, classes;
};

std::vector<std::string> model_names();
// Checks a config (unknown model or key, wrong type or value: an error naming it) and returns it
// with every default filled in.
Config complete_config(const Config& config);
ModelSpec model_spec(const Config& config);
std::shared_ptr<nn::Module> build_model(const Config& config, Generator& gen = default_generator());

// Every flexible layer of a model, in registration order.
std::vector<nn::FlexibleConv2d*> flexible_layers(nn::Module& model);

void save_model(const std::filesystem::path& path, const nn::Module& model, const Config& config,
                Metadata extra = {});
struct LoadedModel {
  std::shared_ptr<nn::Module> model;
  Config config;
  Metadata metadata;
};
// Rebuilds the model from the checkpoint's config and loads its tensors.
LoadedModel load_model(const std::filesystem::path& path, Generator& gen = default_generator());

}  // namespace flexnn::models
