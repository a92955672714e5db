// The registry's table of models, config validation and the config-carrying checkpoints.
#include "models/registry.hpp"

#include "models/config_value.hpp"
#include "models/conv2d_surrogate.hpp"
#include "models/fmnist_small.hpp"
#include "models/hmax.hpp"
#include "models/vgg16.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ranges>
#include <type_traits>

namespace flexnn::models {
namespace {

Config fmnist_small_defaults(const Config& /*given*/) {
  return {{"model", "fmnist-small"},    {"flex", "standard"},     {"sharpness", 50.0},
          {"threshold_mean", 0.5},      {"threshold_std", 0.1},   {"uniform_threshold", 0.1},
          {"freeze_threshold", false},  {"mean", {0.2860}},       {"std", {0.3530}}};
}

FmnistSmallOptions fmnist_small_options(const Config& c) {
  FmnistSmallOptions o;
  o.flex = nn::parse_flex_mode(config_value<std::string>(c, "flex"));
  o.sharpness = config_value<float>(c, "sharpness");
  o.threshold_mean = config_value<float>(c, "threshold_mean");
  o.threshold_std = config_value<float>(c, "threshold_std");
  o.uniform_threshold = config_value<float>(c, "uniform_threshold");
  o.freeze_threshold = config_value<bool>(c, "freeze_threshold");
  o.mean = config_value<std::vector<float>>(c, "mean");
  o.std = config_value<std::vector<float>>(c, "std");
  return o;
}

// vgg16's defaults follow the given data set: Imagenette images are 224x224 unless image_size says.
Config vgg16_defaults(const Config& given) {
  const bool imagenette = given.contains("dataset") && given["dataset"] == "imagenette";
  return {{"model", "vgg16"},          {"flex", "single"},         {"flex_mode", "standard"},
          {"sharpness", 50.0},         {"threshold_mean", 0.0},    {"threshold_std", 1.0},
          {"uniform_threshold", 0.1},  {"freeze_threshold", false}, {"dataset", "cifar10"},
          {"image_size", imagenette ? 224 : 32},
          {"mean", {0.485, 0.456, 0.406}},
          {"std", {0.229, 0.224, 0.225}}};
}

Vgg16Options vgg16_options(const Config& c) {
  const std::string dataset = config_value<std::string>(c, "dataset");
  FLEXNN_CHECK(dataset == "cifar10" || dataset == "imagenette",
               "model config: vgg16's \"dataset\" must be cifar10 or imagenette, found '{}'", dataset);
  Vgg16Options o;
  o.flex = parse_vgg16_flex(config_value<std::string>(c, "flex"));
  o.mode = nn::parse_flex_mode(config_value<std::string>(c, "flex_mode"));
  o.sharpness = config_value<float>(c, "sharpness");
  o.threshold_mean = config_value<float>(c, "threshold_mean");
  o.threshold_std = config_value<float>(c, "threshold_std");
  o.uniform_threshold = config_value<float>(c, "uniform_threshold");
  o.freeze_threshold = config_value<bool>(c, "freeze_threshold");
  o.image_size = config_value<int64_t>(c, "image_size");
  o.mean = config_value<std::vector<float>>(c, "mean");
  o.std = config_value<std::vector<float>>(c, "std");
  validate(o);
  return o;
}

Config conv2d_surrogate_defaults(const Config& /*given*/) {
  return {{"model", "conv2d-surrogate"}, {"mean", {0.485, 0.456, 0.406}}, {"std", {0.229, 0.224, 0.225}}};
}

Conv2dSurrogateOptions conv2d_surrogate_options(const Config& c) {
  return {.mean = config_value<std::vector<float>>(c, "mean"), .std = config_value<std::vector<float>>(c, "std")};
}

struct Entry {
  const char* name;
  Config (*defaults)(const Config& given);  // may depend on the given keys (e.g. the data set)
  ModelSpec (*spec)(const Config& full);
  void (*validate)(const Config&);  // every value's type and name, without building
  std::shared_ptr<nn::Module> (*build)(const Config&, Generator&);
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {"fmnist-small", fmnist_small_defaults, [](const Config&) { return ModelSpec{"fmnist", 1, 28, 28, 10}; },
       [](const Config& c) { (void)fmnist_small_options(c); },
       [](const Config& c, Generator& gen) -> std::shared_ptr<nn::Module> {
         return std::make_shared<FmnistSmall>(fmnist_small_options(c), gen);
       }},
      {"vgg16", vgg16_defaults,
       [](const Config& c) {
         const int64_t size = config_value<int64_t>(c, "image_size");
         return ModelSpec{config_value<std::string>(c, "dataset"), 3, size, size, Vgg16::kClasses};
       },
       [](const Config& c) { (void)vgg16_options(c); },
       [](const Config& c, Generator& gen) -> std::shared_ptr<nn::Module> {
         return std::make_shared<Vgg16>(vgg16_options(c), gen);
       }},
      {"conv2d-surrogate", conv2d_surrogate_defaults,
       [](const Config&) { return ModelSpec{"cifar10", 3, 32, 32, Conv2dSurrogate::kClasses}; },
       [](const Config& c) { (void)conv2d_surrogate_options(c); },
       [](const Config& c, Generator& gen) -> std::shared_ptr<nn::Module> {
         return std::make_shared<Conv2dSurrogate>(conv2d_surrogate_options(c), gen);
       }},
      {"hmax", [](const Config&) { return hmax_defaults(); },
       [](const Config&) { return ModelSpec{"fmnist", 1, Hmax::kImageSize, Hmax::kImageSize, Hmax::kClasses}; },
       [](const Config& c) { (void)hmax_options_from_config(c); },
       [](const Config& c, Generator& gen) -> std::shared_ptr<nn::Module> {
         return std::make_shared<Hmax>(hmax_options_from_config(c), gen);
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
  Config full = e.defaults(config);
  for (const auto& [key, value] : config.items()) {
    FLEXNN_CHECK(full.contains(key), "model config: unknown key \"{}\" for model {} (known: {})", key, e.name,
                 fmt::join(full.items() | std::views::transform([](const auto& item) { return item.key(); }), ", "));
    full[key] = value;
  }
  e.validate(full);
  return full;
}

ModelSpec model_spec(const Config& config) {
  const Config full = complete_config(config);
  return entry(full).spec(full);
}

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
