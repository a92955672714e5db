// Opening a data set for a model: the config's data set, each split's reader and size, the
// input check, and class-balanced subsets.
#include "tools/cli/training_data.hpp"

#include "datasets/catalog.hpp"
#include "engine/error.hpp"

namespace flexnn::cli {

models::Config config_for_data(models::Config config, const std::string& data) {
  if (!config.contains("dataset") && data != "folder" && models::complete_config(config).contains("dataset"))
    config["dataset"] = data;
  return models::complete_config(config);
}

float default_hflip(std::string_view data) { return data == "cifar10" || data == "imagenette" ? 0.5f : 0.0f; }

std::unique_ptr<datasets::ImageSource> open_split(const DataOptions& data, const models::ModelSpec& spec,
                                                  std::string_view split) {
  const bool files = !held_in_memory(data.name);
  FLEXNN_CHECK(files || !data.skip_bad,
               "--skip-bad applies to data sets read from image files (imagenette, folder), not to {}", data.name);
  datasets::ImageFolderOptions folder{.skip_bad = data.skip_bad};
  folder.crop = spec.height;
  if (data.name == "imagenette") {
    folder.channels = 3;
    folder.random_crop = split == "train";
  } else {
    folder.channels = spec.channels;
    folder.resize = spec.height;
  }
  return datasets::open_dataset(data.name, data.dir, split, folder);
}

void check_data_fits(const datasets::ImageSource& source, const models::Config& config, std::string_view data) {
  const models::ModelSpec spec = models::model_spec(config);
  datasets::Image example;
  for (int64_t i = 0; i < source.size(); ++i) {
    datasets::ExampleRandom random(0, 0, i);
    if (!source.load(i, random, example)) continue;
    FLEXNN_CHECK(example.channels == spec.channels && example.height == spec.height && example.width == spec.width,
                 "model {} takes {}x{}x{} images (channels x height x width, as {}), but data set {} gives {}x{}x{}: "
                 "choose a model built for {} or a data set of the model's input",
                 config["model"].get<std::string>(), spec.channels, spec.height, spec.width, spec.dataset, data,
                 example.channels, example.height, example.width, data);
    return;
  }
  fail("data set {}: none of its {} examples could be read", data, source.size());
}

bool held_in_memory(std::string_view data) { return data == "fmnist" || data == "cifar10"; }

std::optional<datasets::ImageDatasetSource> balanced_subset(const datasets::ImageSource& source, int64_t per_class,
                                                            uint64_t seed, const std::string& data,
                                                            const char* option) {
  if (per_class == 0) return std::nullopt;
  const auto* memory = dynamic_cast<const datasets::ImageDatasetSource*>(&source);
  FLEXNN_CHECK(memory != nullptr, "{} needs a data set held in memory (fmnist, cifar10), but {} streams its images "
               "from disk", option, data);
  const datasets::ImageDataset& all = memory->dataset();
  return std::optional<datasets::ImageDatasetSource>(
      std::in_place, datasets::subset(all, datasets::balanced_indices(all, per_class, seed)));
}

}  // namespace flexnn::cli
