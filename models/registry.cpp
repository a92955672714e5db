// The registry's table of models, config validation and the config-carrying checkpoints.
#include "models/registry.hpp"

#include "models/fmnist_small.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ranges>

namespace flexnn::models {
namespace {

// Reads config[key] as T, with a clear error when it has the wrong type.
template <typename T>
T get(const Config& config, const char* key) {
  try {
    return config.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("model config: \"{}\" has the wrong type: {}", key, config.at(key).dump());
  }
}

Config fmnist_small_defaults() {
  return {{"model", "fmnist-small"},    {"flex", "standard"},     {"sharpness", 50.0},
          {"threshold_mean", 0.5},      {"threshold_std", 0.1},   {"uniform_threshold", 0.1},
          {"freeze_threshold", false},  {"mean", {0.2860}},       {"std", {0.3530}}};
}

FmnistSmallOptions fmnist_small_options(const Config& c) {
  FmnistSmallOptions o;
  o.flex = nn::parse_flex_mode(get<std::string>(c, "flex"));
  o.sharpness = get<float>(c, "sharpness");
  o.threshold_mean = get<float>(c, "threshold_mean");
  o.threshold_std = get<float>(c, "threshold_std");
  o.uniform_threshold = get<float>(c, "uniform_threshold");
  o.freeze_threshold = get<bool>(c, "freeze_threshold");
  o.mean = get<std::vector<float>>(c, "mean");
  o.std = get<std::vector<float>>(c, "std");
  return o;
}

struct Entry {
  const char* name;
  Config (*defaults)();
  ModelSpec spec;
  void (*validate)(const Config&);  // every value's type and name, without building
  std::shared_ptr<nn::Module> (*build)(const Config&, Generator&);
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {"fmnist-small", fmnist_small_defaults, {"fmnist", 1, 28, 28, 10},
       [](const Config& c) { (void)fmnist_small_options(c); },
       [](const Config& c, Generator& gen) -> std::shared_ptr<nn::Module> {
         return std::make_shared<FmnistSmall>(fmnist_small_options(c), gen);
       }},
  };
  return table;
}

const Entry& entry(const Config& config) {
  FLEXNN_CHECK(config.is_object() && config.contains("model") && config["model"].is_string(),
               "model config: expected a JSON object with a \"model\" name, found {}", config.dump());
  const std::string name = config["model"].get<std::string>();
  for (const Entry& e : entries())
    if (name == e.name) return e;
  fail("unknown model '{}': expected one of {}", name, fmt::join(model_names(), ", "));
}

void collect_flexible(nn::Module& module, std::vector<nn::FlexibleConv2d*>& out) {
  if (auto* flex = dynamic_cast<nn::FlexibleConv2d*>(&module)) out.push_back(flex);
  for (const auto& [name, child] : module.named_children()) collect_flexible(*child, out);
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const Entry& e : entries()) names.emplace_back(e.name);
  return names;
}

Config complete_config(const Config& config) {
  const Entry& e = entry(config);
  Config full = e.defaults();
  for (const auto& [key, value] : config.items()) {
    FLEXNN_CHECK(full.contains(key), "model config: unknown key \"{}\" for model {} (known: {})", key, e.name,
                 fmt::join(full.items() | std::views::transform([](const auto& item) { return item.key(); }), ", "));
    full[key] = value;
  }
  e.validate(full);
  return full;
}

ModelSpec model_spec(const Config& config) { return entry(config).spec; }

std::shared_ptr<nn::Module> build_model(const Config& config, Generator& gen) {
  const Config full = complete_config(config);
  return entry(full).build(full, gen);
}

std::vector<nn::FlexibleConv2d*> flexible_layers(nn::Module& model) {
  std::vector<nn::FlexibleConv2d*> out;
  collect_flexible(model, out);
  return out;
}

void save_model(const std::filesystem::path& path, const nn::Module& model, const Config& config, Metadata extra) {
  extra[kConfigKey] = complete_config(config).dump();
  save_checkpoint(model, path, extra);
}

LoadedModel load_model(const std::filesystem::path& path, Generator& gen) {
  const TensorFile file = load_tensors(path);
  const auto it = file.metadata.find(kConfigKey);
  FLEXNN_CHECK(it != file.metadata.end(),
               "{}: no model config in the checkpoint's metadata (key \"{}\"); was it written by flexnn?",
               path.string(), kConfigKey);
  Config config;
  try {
    config = Config::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: the model config in the metadata is not valid JSON ({}): {}", path.string(), e.what(), it->second);
  }
  LoadedModel loaded{build_model(config, gen), complete_config(config), file.metadata};
  load_state(*loaded.model, file, path);
  return loaded;
}

}  // namespace flexnn::models
